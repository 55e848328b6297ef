"""evaluators must never import torch, Textual or the engine."""

from __future__ import annotations

import ast
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
        "evaluators.build('semantic_similarity')\n"
        "bad = [m for m in ('torch', 'textual', 'transformers', 'engine') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_no_evaluators_module_names_the_engine() -> None:
    # Not even lazily inside a function: the engine may import evaluators, never the reverse.
    for path in sorted((ROOT / "evaluators").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "engine" or n.startswith("engine.") for n in names), f"{path.name} imports {names}"
