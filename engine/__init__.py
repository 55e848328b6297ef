"""lmscope's inference engine: Hugging Face models behind an async, streaming, batched API.

Never imports Textual. Every model call runs on a worker thread, off the caller's event loop.
``Engine`` and ``EngineConfig`` are imported on first use: importing the types and errors must not
pull in torch (``lmscope --help`` and ``lmscope score`` never need it).
"""

from typing import TYPE_CHECKING, Any

from engine.errors import (
    ContextLengthError,
    EngineClosedError,
    GenerationStalledError,
    HubUnreachableError,
    InvalidModelError,
    InvalidRequestError,
    LmscopeError,
    MissingDependencyError,
    ModelNotFoundError,
    OutOfMemoryError,
    UnsupportedModelError,
)
from engine.spec import ModelSpec
from engine.types import (
    AttentionRequest,
    AttentionResult,
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    FillMaskRequest,
    FillMaskResult,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    MaskPrediction,
    ModelInfo,
    PerplexityResult,
    StreamEvent,
    Text2TextRequest,
    TokenDelta,
    TokenLogprob,
    Usage,
)

if TYPE_CHECKING:
    from engine.engine import Engine, EngineConfig

__all__ = [
    "AttentionRequest", "AttentionResult", "ChatMessage", "ChatRequest", "CompletionRequest", "ContextLengthError", "Engine", "EngineClosedError",
    "EngineConfig", "FillMaskRequest", "FillMaskResult", "GenerationParams", "GenerationRequest",
    "GenerationResult", "GenerationStalledError", "HubUnreachableError", "InvalidModelError",
    "InvalidRequestError", "LmscopeError", "LoglikelihoodResult", "MaskPrediction", "MissingDependencyError", "ModelInfo",
    "ModelNotFoundError", "ModelSpec", "OutOfMemoryError", "PerplexityResult", "StreamEvent",
    "Text2TextRequest", "TokenDelta", "TokenLogprob", "UnsupportedModelError", "Usage",
]

from engine.errors import MalformedStreamError, RemoteServerError, ServerUnreachableError  # noqa: E402

__all__ += ["MalformedStreamError", "RemoteServerError", "ServerUnreachableError"]


def __getattr__(name: str) -> Any:
    if name in ("Engine", "EngineConfig"):
        from engine import engine as _engine_module

        return getattr(_engine_module, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
