"""What a provider test sends and how a provider's answer reads. Pure: no network, no clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.catalog import ProviderSpec

__all__ = ["Probe", "catalog_models", "parse_models", "probe_body", "probe_for", "scrub", "upstream_message"]

# the longest provider error text passed on (a misconfigured base URL may answer with a whole HTML page)
_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Probe:
    """One minimal request: a GET of ``path``, or a POST of a one-token chat request to ``model``."""

    method: str
    path: str
    model: str = ""


def probe_for(spec: ProviderSpec, options: Mapping[str, str]) -> Probe | None:
    """The cheapest call that proves credentials work: the catalog's ``test`` path, else its ``models`` path, else
    a one-token chat request to its first chat model; None when the provider offers none of them. ``options``
    (the connection's) fill the paths' parameters (Azure's ``{apiVersion}``)."""
    for operation in ("test", "models"):
        path = spec.path(operation, stream=False, model="", options=options)
        if path is not None:
            return Probe("GET", path)
    if spec.format != common_pb2.FORMAT_UNSPECIFIED and spec.models:
        path = spec.path("chat", stream=False, model=spec.models[0], options=options)
        if path is not None:
            return Probe("POST", path, spec.models[0])
    return None


def probe_body(model: str) -> bytes:
    """The one-token chat request in the hub format (OpenAI Chat Completions)."""
    return jsonx.dumps({"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})


def _entries(doc: Any, member: str) -> list[Mapping[str, Any]]:
    items = doc.get(member) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"the model list has no {member!r} array")
    return [item for item in items if isinstance(item, dict)]


def _openai(doc: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in _entries(doc, "data"):
        if isinstance(item.get("id"), str):
            entry: dict[str, Any] = {"id": item["id"]}
            if isinstance(item.get("owned_by"), str):
                entry["ownedBy"] = item["owned_by"]
            out.append(entry)
    return out


def _anthropic(doc: Any) -> list[dict[str, Any]]:
    return [
        {"id": item["id"], "name": item.get("display_name") or item["id"]}
        for item in _entries(doc, "data")
        if isinstance(item.get("id"), str)
    ]


def _gemini(doc: Any) -> list[dict[str, Any]]:
    return [
        {"id": item["name"].removeprefix("models/"), "name": item.get("displayName") or item["name"]}
        for item in _entries(doc, "models")
        if isinstance(item.get("name"), str)
    ]


def _ollama(doc: Any) -> list[dict[str, Any]]:
    return [{"id": item["name"]} for item in _entries(doc, "models") if isinstance(item.get("name"), str)]


_PARSERS: Mapping[common_pb2.Format.ValueType, Callable[[Any], list[dict[str, Any]]]] = {
    common_pb2.FORMAT_OPENAI_CHAT: _openai,
    common_pb2.FORMAT_OPENAI_RESPONSES: _openai,
    common_pb2.FORMAT_ANTHROPIC_MESSAGES: _anthropic,
    common_pb2.FORMAT_GEMINI: _gemini,
    common_pb2.FORMAT_OLLAMA_CHAT: _ollama,
}


def parse_models(fmt: common_pb2.Format.ValueType, body: bytes) -> list[dict[str, Any]]:
    """The models of a provider's list answer in its format (``data[].id``; Gemini ``models[].name`` without
    ``models/``; Ollama ``models[].name``). Raises ``ValueError`` for a body that is not such a list."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise ValueError("the provider's format has no model list")
    return parser(jsonx.loads(body))


def catalog_models(spec: ProviderSpec) -> list[dict[str, Any]]:
    """The catalog's models of ``spec``, each with the operation it serves (``chat``, ``embeddings``, ...)."""
    out = [{"id": m, "type": "chat"} for m in spec.models]
    for operation, models in spec.operation_models.items():
        out.extend({"id": m, "type": operation} for m in models)
    return out


def upstream_message(status: int, body: bytes) -> str:
    """A provider's error text: the ``error.message`` (or ``error`` string, or ``message``) of a JSON error body,
    else the start of the body, else the status alone."""
    text = ""
    try:
        doc = jsonx.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        error = doc.get("error")
        if isinstance(error, dict):
            text = str(error.get("message") or "")
        elif isinstance(error, str):
            text = error
        text = text or str(doc.get("message") or "")
    if not text:
        text = body[:_MESSAGE_LIMIT].decode("utf-8", "replace").strip()
    text = text[:_MESSAGE_LIMIT]
    return f"provider answered {status}: {text}" if text else f"provider answered {status}"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (providers echo keys back in some error messages)."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
