"""lmscope's inference engine: Hugging Face models behind an async, streaming, batched API.

Never imports Textual. Every model call runs on a worker thread, off the caller's event loop.
"""

from engine.engine import Engine, EngineConfig
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

__all__ = [
    "ChatMessage", "ChatRequest", "CompletionRequest", "ContextLengthError", "Engine", "EngineClosedError",
    "EngineConfig", "FillMaskRequest", "FillMaskResult", "GenerationParams", "GenerationRequest",
    "GenerationResult", "GenerationStalledError", "HubUnreachableError", "InvalidModelError",
    "InvalidRequestError", "LmscopeError", "LoglikelihoodResult", "MaskPrediction", "MissingDependencyError", "ModelInfo",
    "ModelNotFoundError", "ModelSpec", "OutOfMemoryError", "PerplexityResult", "StreamEvent",
    "Text2TextRequest", "TokenDelta", "TokenLogprob", "UnsupportedModelError", "Usage",
]

from engine.errors import MalformedStreamError, RemoteServerError, ServerUnreachableError  # noqa: E402

__all__ += ["MalformedStreamError", "RemoteServerError", "ServerUnreachableError"]
