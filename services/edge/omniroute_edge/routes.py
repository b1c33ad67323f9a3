"""The route table: every public data-plane path, as data (STYLE.md rule 8).

A route names the client's wire format, the operation and the scope a key needs, and where the model and the
stream flag come from (the body for most formats; Gemini puts both in the path, Ollama streams unless told not
to; a transcription's model is a field of its multipart form; a listing has none). The edge has one relay for
all of them; nothing in it branches on a format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from omniroute.v1 import common_pb2

__all__ = ["ANY_SCOPE", "ROUTES", "PathAction", "Route"]

# a listing: any key that may use the data plane may read it, whatever its scopes
ANY_SCOPE = ""


@dataclass(frozen=True, slots=True)
class PathAction:
    """What ``…/{model}:{action}`` means (Gemini's method suffixes)."""

    operation: common_pb2.Operation.ValueType
    stream: bool


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    format: common_pb2.Format.ValueType
    operation: common_pb2.Operation.ValueType
    scope: str
    methods: tuple[str, ...] = ("POST",)
    stream_default: bool = False
    # set when the model and the action are the path parameter ``target`` ("<model>:<action>")
    path_actions: Mapping[str, PathAction] = field(default_factory=dict)
    # where the format keeps the sampling temperature (cache eligibility)
    temperature_path: tuple[str, ...] = ("temperature",)
    # where the format may keep the output-token cap, first found wins (the tokens-per-minute estimate)
    max_tokens_paths: tuple[tuple[str, ...], ...] = (
        ("max_completion_tokens",),
        ("max_tokens",),
        ("max_output_tokens",),
    )
    # how the request body is read: "json", "multipart" (model from the form) or "none" (a listing)
    body: str = "json"
    # the body's `stream` flag applies (embeddings, images and transcriptions answer in one piece)
    streams: bool = True
    # replies may be served from and stored in the exact cache (not listings, images or transcriptions)
    cacheable: bool = True
    # the path parameter `provider` names the provider: the model gets that prefix when it has none
    provider_param: bool = False
    # a listing (OPERATION_LIST_MODELS) of the models serving these operations (empty: every operation)
    list_operations: tuple[common_pb2.Operation.ValueType, ...] = ()


_GEMINI_ACTIONS = {
    "generateContent": PathAction(common_pb2.OPERATION_CHAT, stream=False),
    "streamGenerateContent": PathAction(common_pb2.OPERATION_CHAT, stream=True),
}

ROUTES: tuple[Route, ...] = (
    Route("/v1/chat/completions", common_pb2.FORMAT_OPENAI_CHAT, common_pb2.OPERATION_CHAT, "chat"),
    # before /v1/messages (Starlette tries routes in order); counted offline by the translator, no provider call
    Route("/v1/messages/count_tokens", common_pb2.FORMAT_ANTHROPIC_MESSAGES, common_pb2.OPERATION_COUNT_TOKENS, "chat"),
    Route("/v1/messages", common_pb2.FORMAT_ANTHROPIC_MESSAGES, common_pb2.OPERATION_CHAT, "chat"),
    Route("/v1/responses", common_pb2.FORMAT_OPENAI_RESPONSES, common_pb2.OPERATION_CHAT, "chat"),
    # Gemini's SDKs call /v1beta (the API reference) or /v1 (google-genai's default); both are served
    *(
        Route(
            f"/{version}/models/{{target:path}}",
            common_pb2.FORMAT_GEMINI,
            common_pb2.OPERATION_CHAT,
            "chat",
            path_actions=_GEMINI_ACTIONS,
            temperature_path=("generationConfig", "temperature"),
            max_tokens_paths=(("generationConfig", "maxOutputTokens"),),
        )
        for version in ("v1beta", "v1")
    ),
    *(
        Route(path, common_pb2.FORMAT_OPENAI_CHAT, operation, scope, provider_param=True, streams=streams)
        for path, operation, scope, streams in (
            ("/v1/providers/{provider}/chat/completions", common_pb2.OPERATION_CHAT, "chat", True),
            ("/v1/providers/{provider}/embeddings", common_pb2.OPERATION_EMBEDDINGS, "embeddings", False),
            ("/v1/providers/{provider}/images/generations", common_pb2.OPERATION_IMAGES, "images", False),
        )
    ),
    Route(
        "/v1/embeddings", common_pb2.FORMAT_OPENAI_CHAT, common_pb2.OPERATION_EMBEDDINGS, "embeddings", streams=False
    ),
    Route(
        "/v1/images/generations",
        common_pb2.FORMAT_OPENAI_CHAT,
        common_pb2.OPERATION_IMAGES,
        "images",
        streams=False,
        cacheable=False,
    ),
    Route(
        "/v1/audio/transcriptions",
        common_pb2.FORMAT_OPENAI_CHAT,
        common_pb2.OPERATION_TRANSCRIPTION,
        "audio",
        body="multipart",
        streams=False,
        cacheable=False,
    ),
    # listings: GET beside the POST of the same path where the API reference has both
    *(
        Route(
            path,
            fmt,
            common_pb2.OPERATION_LIST_MODELS,
            scope,
            methods=("GET",),
            body="none",
            streams=False,
            cacheable=False,
            list_operations=operations,
        )
        for path, fmt, scope, operations in (
            ("/v1/models", common_pb2.FORMAT_OPENAI_CHAT, ANY_SCOPE, ()),
            ("/v1/embeddings", common_pb2.FORMAT_OPENAI_CHAT, "embeddings", (common_pb2.OPERATION_EMBEDDINGS,)),
            ("/v1/images/generations", common_pb2.FORMAT_OPENAI_CHAT, "images", (common_pb2.OPERATION_IMAGES,)),
            # Gemini and Ollama clients can only chat through the gateway: they are shown chat models
            ("/v1beta/models", common_pb2.FORMAT_GEMINI, ANY_SCOPE, (common_pb2.OPERATION_CHAT,)),
            ("/api/tags", common_pb2.FORMAT_OLLAMA_CHAT, ANY_SCOPE, (common_pb2.OPERATION_CHAT,)),
        )
    ),
    Route(
        "/v1/api/chat",
        common_pb2.FORMAT_OLLAMA_CHAT,
        common_pb2.OPERATION_CHAT,
        "chat",
        stream_default=True,
        temperature_path=("options", "temperature"),
        max_tokens_paths=(("options", "num_predict"),),
    ),
)
