"""Reading what the relay needs from a request, by the route's body kind (a table, not format branches):
the parsed document the guards and caches look at, the model, the stream flag, the operation, the body's media
type for the executor, and how many bytes count towards the tokens-per-minute estimate.

- ``json``: the body's ``model`` and ``stream`` (or, for Gemini, the ``<model>:<action>`` path parameter);
- ``multipart``: the ``model`` field of a transcription form, read in place from the one buffered body, and a
  check that ``file`` is audio of a supported format (so a bad upload never reaches the executor); the audio does
  not count as prompt tokens;
- ``none``: a listing (no body, no model).

On a dedicated provider route (``/v1/providers/{provider}/...``) the model gets the provider's prefix when it has
none, and a model that names another provider is refused with 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_core.catalog import Catalog
from omniroute_core.errors import hub_error
from omniroute_core.multipart import AUDIO_FORMATS, MultipartError, audio_format, parse_form
from omniroute_core.resolution import provider_for_prefix
from omniroute_core.snapshot import EMPTY, ConfigSnapshot
from omniroute_edge.routes import Route

__all__ = ["READERS", "BodyError", "Parsed", "provider_model", "read_request"]


class BodyError(Exception):
    """The request cannot be relayed as sent; ``error`` says why (in hub vocabulary)."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Parsed:
    doc: dict[str, Any]
    model: str
    stream: bool
    operation: common_pb2.Operation.ValueType
    content_type: str = ""  # set when the body is not JSON
    token_bytes: int = 0  # the bytes that count as prompt for the tokens-per-minute estimate


def _json(route: Route, body: bytes, content_type: str, path_params: Mapping[str, str]) -> Parsed:
    try:
        doc = jsonx.loads(body)
    except jsonx.JSONDecodeError as exc:
        raise BodyError(hub_error(400, f"request body is not valid JSON: {exc}", code="invalid_json")) from exc
    if not isinstance(doc, dict):
        raise BodyError(hub_error(400, "request body must be a JSON object", code="invalid_json"))
    if route.path_actions:
        model, _, action_name = path_params.get("target", "").rpartition(":")
        action = route.path_actions.get(action_name)
        if action is None or not model:
            known = ", ".join(sorted(route.path_actions))
            raise BodyError(hub_error(404, f"unknown method {action_name!r}; expected <model>:<{known}>"))
        return Parsed(doc, model.removeprefix("models/"), action.stream, action.operation, token_bytes=len(body))
    body_model = doc.get("model")
    if not isinstance(body_model, str) or not body_model:
        raise BodyError(hub_error(400, "'model' is required and must be a string", param="model"))
    stream = doc.get("stream", route.stream_default) if route.streams else False
    if not isinstance(stream, bool):
        raise BodyError(hub_error(400, "'stream' must be a boolean", param="stream"))
    return Parsed(doc, body_model, stream, route.operation, token_bytes=len(body))


def _multipart(route: Route, body: bytes, content_type: str, path_params: Mapping[str, str]) -> Parsed:
    try:
        form = parse_form(body, content_type)
    except MultipartError as exc:
        raise BodyError(hub_error(400, f"invalid multipart body: {exc}", code="invalid_multipart")) from exc
    fields = form.fields()
    model = fields.get("model", "")
    if not model:
        raise BodyError(hub_error(400, "the form's 'model' field is required", param="model"))
    part = form.part("file")
    if part is None or part.filename is None:
        raise BodyError(hub_error(400, "the form's 'file' part (the audio) is required", param="file"))
    if audio_format(form.content(part)) is None:
        supported = ", ".join(AUDIO_FORMATS)
        raise BodyError(
            hub_error(400, f"unsupported audio format; supported: {supported}", param="file", code="invalid_file")
        )
    text_bytes = sum(len(k) + len(v) for k, v in fields.items())
    return Parsed(dict(fields), model, False, route.operation, content_type, text_bytes)


def _none(route: Route, body: bytes, content_type: str, path_params: Mapping[str, str]) -> Parsed:
    return Parsed({}, "", False, route.operation)


READERS: Mapping[str, Callable[[Route, bytes, str, Mapping[str, str]], Parsed]] = {
    "json": _json,
    "multipart": _multipart,
    "none": _none,
}


def provider_model(model: str, provider: str, catalog: Catalog, snapshot: ConfigSnapshot = EMPTY) -> str:
    """``model`` on the dedicated route of ``provider`` (a catalog provider or a provider node's prefix): prefixed
    when it names no provider; refused (400) when it names another one, and 404 for an unknown provider."""
    spec = provider_for_prefix(provider, catalog, snapshot)
    if spec is None:
        raise BodyError(hub_error(404, f"unknown provider {provider!r}", code="provider_not_found"))
    prefix, sep, _ = model.partition("/")
    named = provider_for_prefix(prefix, catalog, snapshot) if sep else None
    if named is None:
        node = snapshot.nodes_by_id.get(spec.id)
        return f"{node.prefix if node is not None else spec.id}/{model}"
    if named.id != spec.id:
        raise BodyError(
            hub_error(
                400,
                f"model {model!r} belongs to provider {named.id!r}, not {spec.id!r} (the route's provider)",
                param="model",
                code="provider_mismatch",
            )
        )
    return model


def read_request(
    route: Route,
    body: bytes,
    content_type: str,
    path_params: Mapping[str, str],
    catalog: Catalog,
    snapshot: ConfigSnapshot = EMPTY,
) -> Parsed:
    """What the relay needs from a request. Raises :class:`BodyError`."""
    parsed = READERS[route.body](route, body, content_type, path_params)
    if not route.provider_param:
        return parsed
    model = provider_model(parsed.model, path_params.get("provider", ""), catalog, snapshot)
    return Parsed(parsed.doc, model, parsed.stream, parsed.operation, parsed.content_type, parsed.token_bytes)
