"""A converted safetensors copy of each GGUF file, so the slow dequantisation happens once.

Copies live under ``<user cache>/lmscope/converted/<sha256 of the GGUF>/``. The hash is
remembered per (path, size, mtime) so a warm load does not re-read the whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import platformdirs

_COMPLETE_MARKER = "lmscope-converted.json"


def cache_root() -> Path:
    """``LMSCOPE_CACHE_DIR`` if set, else the platform's user cache directory for lmscope."""
    env = os.environ.get("LMSCOPE_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("lmscope"))


def file_sha256(path: Path) -> str:
    """SHA-256 of ``path``, memoised by (resolved path, size, mtime)."""
    stat = path.stat()
    index_path = cache_root() / "gguf-hashes.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    if key in index:
        return index[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    index[key] = digest.hexdigest()
    try:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(index_path, json.dumps(index, indent=0))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return index[key]


def converted_dir(gguf_path: Path) -> Path:
    return cache_root() / "converted" / file_sha256(gguf_path)


def lookup(gguf_path: Path) -> Path | None:
    """The converted copy of ``gguf_path`` if a complete one exists."""
    folder = converted_dir(gguf_path)
    return folder if (folder / _COMPLETE_MARKER).is_file() else None


def store(gguf_path: Path, model, tokenizer) -> Path | None:
    """Save a GGUF-loaded ``model`` and ``tokenizer`` as safetensors; return the folder.

    ``save_pretrained`` refuses a model that still carries the GGUF quantizer markers, so they
    are cleared first (the weights are already dequantised in memory). The folder is written
    under a temporary name and renamed, so a crash never leaves a half-written copy in use.
    Returns None when the cache cannot be written (the model still works, just loads slowly).
    """
    target = converted_dir(gguf_path)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _atomic_write(tmp / _COMPLETE_MARKER, json.dumps({"source": str(gguf_path)}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        return target
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None
        return None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
