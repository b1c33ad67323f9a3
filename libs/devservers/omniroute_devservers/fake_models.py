"""Model-list answers of the fake providers, in each provider's real shape: OpenAI ``GET /v1/models``,
Anthropic ``GET /v1/models``, Gemini ``GET /v1beta/models`` and Ollama ``GET /api/tags``.

A list request without a credential is refused as the provider refuses it (401 from OpenAI and Anthropic, 403 from
Gemini); Ollama needs none. The model ids are :data:`MODEL_IDS` for every fake.
"""

from __future__ import annotations

from omniroute_devservers.fake_upstream import Recorded, Reply

__all__ = ["MODEL_IDS", "anthropic_models", "gemini_models", "ollama_tags", "openai_models"]

MODEL_IDS = ("fake-large", "fake-small")


def openai_models(request: Recorded) -> Reply:
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        error = {"message": "You didn't provide an API key.", "type": "invalid_request_error", "code": None}
        return Reply(status=401, json={"error": {**error, "param": None}})
    data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"} for m in MODEL_IDS]
    return Reply(json={"object": "list", "data": data})


def anthropic_models(request: Recorded) -> Reply:
    if not request.headers.get("x-api-key"):
        error = {"type": "authentication_error", "message": "x-api-key header is required"}
        return Reply(status=401, json={"type": "error", "error": error})
    data = [
        {"type": "model", "id": m, "display_name": m.replace("-", " ").title(), "created_at": "2025-01-01T00:00:00Z"}
        for m in MODEL_IDS
    ]
    return Reply(json={"data": data, "has_more": False, "first_id": MODEL_IDS[0], "last_id": MODEL_IDS[-1]})


def gemini_models(request: Recorded) -> Reply:
    if not request.headers.get("x-goog-api-key") and "key=" not in request.path:
        error = {"code": 403, "message": "Method doesn't allow unregistered callers", "status": "PERMISSION_DENIED"}
        return Reply(status=403, json={"error": error})
    models = [
        {"name": f"models/{m}", "displayName": m.title(), "supportedGenerationMethods": ["generateContent"]}
        for m in MODEL_IDS
    ]
    return Reply(json={"models": models})


def ollama_tags(request: Recorded) -> Reply:
    models = [
        {
            "name": f"{m}:latest",
            "model": f"{m}:latest",
            "modified_at": "2026-01-01T00:00:00Z",
            "size": 1000,
            "digest": "0" * 64,
            "details": {"format": "gguf", "family": "llama", "parameter_size": "1B", "quantization_level": "Q4_0"},
        }
        for m in MODEL_IDS
    ]
    return Reply(json={"models": models})
