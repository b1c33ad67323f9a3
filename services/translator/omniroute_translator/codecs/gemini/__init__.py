"""Gemini ``generateContent`` / ``streamGenerateContent`` (``?alt=sse``) against the hub.

The model (and whether to stream) live in the URL, not the body: see :mod:`.request` for how they are supplied.
"""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.base import Context, DecodedResponse, HubRequest, HubResponse
from omniroute_translator.codecs.gemini import errors, request, response
from omniroute_translator.codecs.gemini.models import render_models
from omniroute_translator.codecs.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder

__all__ = ["CODEC", "GeminiCodec", "render_models"]


class GeminiCodec:
    """:class:`~omniroute_translator.codecs.base.Codec` for ``FORMAT_GEMINI``."""

    name = "gemini"
    content_type = "application/json"
    stream_content_type = "text/event-stream"

    def decode_request(self, body: bytes) -> HubRequest:
        return request.decode_request(body)

    def encode_request(self, hub: HubRequest, model: str) -> bytes:
        return request.encode_request(hub, model)

    def decode_response(self, body: bytes) -> DecodedResponse:
        return response.decode_response(body)

    def encode_response(self, hub: HubResponse, ctx: Context) -> bytes:
        return response.encode_response(hub, ctx)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def stream_encoder(self, ctx: Context) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(ctx)

    def render_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_error(err)

    def render_stream_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_stream_error(err)


CODEC = GeminiCodec()
