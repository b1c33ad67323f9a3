"""The translator's operations over the codec table: source → hub → target, and the same-format fast paths.

Pure like the codecs (no I/O, no clock): the gRPC servicer is a thin adapter over these functions. Every
failure a caller can cause (unsupported pair, invalid body) comes back as a hub ``Error`` inside the reply.
"""

from __future__ import annotations

from collections.abc import Mapping

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_core.formats import FORMAT_BY_NAME, format_name
from omniroute_translator.codecs.base import Codec, CodecError, Context, HubChunk, StreamDecoder, StreamEncoder
from omniroute_translator.codecs.hub import error_from_chunk, has_content, is_error_chunk, usage_to_proto
from omniroute_translator.codecs.listings import LISTINGS
from omniroute_translator.policy import apply_policy
from omniroute_translator.rawjson import replace_top_level_string

__all__ = [
    "CodecTable",
    "StreamSession",
    "open_stream",
    "render_error",
    "render_models",
    "translate_request",
    "translate_response",
]

CodecTable = Mapping[common_pb2.Format.ValueType, Codec]


def _pair(
    table: CodecTable, source: common_pb2.Format.ValueType, target: common_pb2.Format.ValueType
) -> tuple[Codec, Codec] | common_pb2.Error:
    """Both codecs, or a 400 naming what is missing and what is supported."""
    src, tgt = table.get(source), table.get(target)
    if src is not None and tgt is not None:
        return src, tgt
    supported = ", ".join(name for name, fmt in FORMAT_BY_NAME.items() if fmt in table)
    missing = [
        f"{role} format {format_name(fmt)!r}"
        for role, fmt, c in (("source", source, src), ("target", target, tgt))
        if c is None
    ]
    return hub_error(
        400,
        f"Translation from {format_name(source)!r} to {format_name(target)!r} is not supported: "
        f"{' and '.join(missing)} has no codec (supported: {supported}).",
        code="unsupported_format",
    )


def translate_request(table: CodecTable, req: translator_pb2.TranslateRequestIn) -> translator_pb2.TranslateRequestOut:
    """Decode the source body to the hub (validating it) and encode it for the target naming ``req.model``.

    Same format: the body is validated, then only its top-level ``model`` is patched in the raw bytes (an empty
    ``req.model`` keeps the body byte for byte), unless ``req.policy`` changed the request: then it is encoded
    from the hub like any other pair (see :mod:`omniroute_translator.policy`). A target of ``FORMAT_OPENAI_CHAT``
    reached from another format is a body for an OpenAI-format provider, so the hub's extension fields are dropped
    (see the README).
    """
    pair = _pair(table, req.source, req.target)
    if isinstance(pair, common_pb2.Error):
        return translator_pb2.TranslateRequestOut(error=pair)
    src, tgt = pair
    try:
        hub = src.decode_request(req.body)
    except CodecError as exc:
        return translator_pb2.TranslateRequestOut(error=exc.error)
    model = str(hub.get("model") or "")
    # the caller knows the stream flag even where the body does not carry it (Gemini puts it in the path)
    stream = req.stream or hub.get("stream") is True
    if stream:
        hub["stream"] = True
    target_model = req.model or model
    adjusted = req.HasField("policy") and apply_policy(hub, req.policy)
    if req.source == req.target and not adjusted:
        if not model or target_model == model:
            body = req.body  # nothing to rewrite (or a format that names the model in the URL)
        else:
            patched = replace_top_level_string(req.body, "model", target_model)
            # a model spelled with escapes: re-serialize, still without any translation
            body = patched if patched is not None else jsonx.dumps({**hub, "model": target_model})
    else:
        try:
            body = tgt.encode_request(hub, target_model)
        except CodecError as exc:  # the target cannot honour something the request requires
            return translator_pb2.TranslateRequestOut(error=exc.error)
    return translator_pb2.TranslateRequestOut(body=body, model=model, stream=stream)


def translate_response(
    table: CodecTable, req: translator_pb2.TranslateResponseIn
) -> translator_pb2.TranslateResponseOut:
    """The provider's complete response in the client's format, with its usage. Same format: the body is passed
    through untouched (it is still decoded, for usage and to surface an error envelope)."""
    pair = _pair(table, req.source, req.target)
    if isinstance(pair, common_pb2.Error):
        return translator_pb2.TranslateResponseOut(error=pair)
    src, tgt = pair
    try:
        decoded = src.decode_response(req.body)
    except CodecError as exc:
        return translator_pb2.TranslateResponseOut(error=exc.error)
    if req.source == req.target:
        return translator_pb2.TranslateResponseOut(body=req.body, usage=decoded.usage)
    ctx = Context(model=req.model, request_id=req.request_id, created_unix=req.created_unix)
    return translator_pb2.TranslateResponseOut(body=tgt.encode_response(decoded.hub, ctx), usage=decoded.usage)


def render_models(req: translator_pb2.RenderModelsIn) -> translator_pb2.RenderModelsOut:
    """A model listing in ``req.target``'s shape; a 404 for a format that has no listing endpoint."""
    render = LISTINGS.get(req.target)
    if render is None:
        return translator_pb2.RenderModelsOut(
            error=hub_error(404, f"format {format_name(req.target)!r} has no model listing", code="unsupported_format")
        )
    body = render([(m.id, m.owned_by, m.created_unix) for m in req.models])
    return translator_pb2.RenderModelsOut(body=body, content_type="application/json")


def render_error(table: CodecTable, req: translator_pb2.RenderErrorIn) -> translator_pb2.RenderErrorOut:
    """The error in the target format. A target without a codec gets the hub's (OpenAI) envelope, since an
    error must always reach the client in some form."""
    codec = table.get(req.target) or table.get(common_pb2.FORMAT_OPENAI_CHAT)
    if codec is None:
        raise LookupError("the codec table has no OpenAI chat codec to fall back on")
    if req.in_stream:
        return translator_pb2.RenderErrorOut(
            body=codec.render_stream_error(req.error), content_type=codec.stream_content_type
        )
    return translator_pb2.RenderErrorOut(body=codec.render_error(req.error), content_type=codec.content_type)


class StreamSession:
    """One streamed response: provider byte batches in, at most one client reply per batch out.

    ``encoder`` is ``None`` on the same-format path: input bytes are forwarded untouched and only decoded for
    usage, errors and the content flag. Otherwise every hub chunk a batch completes is encoded and the results
    are concatenated into one reply; the target's terminal event is appended as soon as the source's is seen.
    """

    def __init__(self, decoder: StreamDecoder, encoder: StreamEncoder | None, content_type: str) -> None:
        self._decoder = decoder
        self._encoder = encoder
        self._content_type = content_type
        self._usage = common_pb2.Usage()
        self._content_started = False
        self._finished = False

    def feed(self, data: bytes) -> translator_pb2.StreamOut | None:
        """The reply for one input batch, or ``None`` when it completes nothing the client would receive."""
        reply = self._reply(data, self._decoder.feed(data), self._decoder.complete)
        return reply if reply.data else None

    def finish(self) -> translator_pb2.StreamOut:
        """The last reply (input ended): what the decoder still held, ``done``, the usage and ``complete``."""
        end = self._decoder.end()
        reply = self._reply(b"", end.chunks, end.complete)
        reply.done = True
        reply.complete = end.complete
        reply.usage.CopyFrom(self._usage)
        return reply

    def _reply(self, data: bytes, chunks: list[HubChunk], complete: bool) -> translator_pb2.StreamOut:
        reply = translator_pb2.StreamOut(content_type=self._content_type)
        parts: list[bytes] = [data] if self._encoder is None else []
        for chunk in chunks:
            if is_error_chunk(chunk):
                if not reply.HasField("error"):
                    reply.error.CopyFrom(error_from_chunk(chunk))
            else:
                if isinstance(chunk.get("usage"), dict):
                    self._usage = usage_to_proto(chunk["usage"])
                if not self._content_started and has_content(chunk):
                    self._content_started = reply.content_started = True
            if self._encoder is not None:
                parts.append(self._encoder.encode(chunk))
        if complete and not self._finished:
            self._finished = True
            if self._encoder is not None:
                parts.append(self._encoder.finish(self._usage))
        reply.data = b"".join(parts)
        return reply


def open_stream(table: CodecTable, setup: translator_pb2.StreamSetup) -> StreamSession | common_pb2.Error:
    """A session for ``setup``, or a 400 when the pair is not supported."""
    pair = _pair(table, setup.source, setup.target)
    if isinstance(pair, common_pb2.Error):
        return pair
    src, tgt = pair
    if setup.source == setup.target:
        return StreamSession(src.stream_decoder(), None, tgt.stream_content_type)
    ctx = Context(model=setup.model, request_id=setup.request_id, created_unix=setup.created_unix)
    return StreamSession(src.stream_decoder(), tgt.stream_encoder(ctx), tgt.stream_content_type)
