"""OpenAI wire types, field names verbatim."""

from protocol.openai.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    StreamOptions,
    TextPart,
)
from protocol.openai.common import (
    ErrorDetail,
    ErrorResponse,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from protocol.openai.completions import (
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    CompletionRequest,
)
from protocol.openai.embeddings import (
    Embedding,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    decode_base64_floats,
    encode_base64_floats,
)
from protocol.openai.images import (
    ImageData,
    ImageEditFields,
    ImageGenerationRequest,
    ImagesResponse,
)
from protocol.openai.models import Model, ModelList, ModelPricing

__all__ = [
    "AssistantMessage",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChoiceLogprobs",
    "ChunkChoice",
    "ChunkDelta",
    "Completion",
    "CompletionChoice",
    "CompletionChunk",
    "CompletionLogprobs",
    "CompletionRequest",
    "Embedding",
    "EmbeddingList",
    "EmbeddingRequest",
    "EmbeddingUsage",
    "ErrorDetail",
    "ErrorResponse",
    "ImageData",
    "ImageEditFields",
    "ImageGenerationRequest",
    "ImagesResponse",
    "Model",
    "ModelList",
    "ModelPricing",
    "StreamOptions",
    "TextPart",
    "TokenLogprob",
    "TopLogprob",
    "Usage",
    "decode_base64_floats",
    "encode_base64_floats",
]
