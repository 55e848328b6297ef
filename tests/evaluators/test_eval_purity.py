"""evaluators must never import torch or Textual (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_every_evaluators_module_imports_no_torch() -> None:
    code = (
        "import importlib, pkgutil, sys, evaluators\n"
        "for m in pkgutil.iter_modules(evaluators.__path__):\n"
        "    importlib.import_module('evaluators.' + m.name)\n"
        "evaluators.get('bleu').score_corpus(['a b c d'], [['a b c d']], ci=True)\n"
        "evaluators.get('semantic_similarity', embedder=lambda t: [[1.0]] * len(t), embedder_name='x')\n"
        "bad = [m for m in ('torch', 'textual', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
