"""The route table: every public data-plane path, as data (STYLE.md rule 8).

A route names the client's wire format, the operation and the scope a key needs, and where the model and the
stream flag come from (the body for most formats; Gemini puts both in the path, Ollama streams unless told not
to). The edge has one relay for all of them; nothing in it branches on a format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from omniroute.v1 import common_pb2

__all__ = ["ROUTES", "PathAction", "Route"]


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
