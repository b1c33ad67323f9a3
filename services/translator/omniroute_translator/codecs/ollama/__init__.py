"""Ollama ``/api/chat`` (NDJSON streaming, streams by default) against the hub, and the ``/api/tags`` shape."""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.base import Context, DecodedResponse, HubRequest, HubResponse
from omniroute_translator.codecs.ollama import errors, request, response
from omniroute_translator.codecs.ollama.stream import OllamaStreamDecoder, OllamaStreamEncoder
from omniroute_translator.codecs.ollama.tags import render_tags

__all__ = ["CODEC", "OllamaCodec", "render_tags"]


class OllamaCodec:
    """:class:`~omniroute_translator.codecs.base.Codec` for ``FORMAT_OLLAMA_CHAT``."""

    name = "ollama"
    content_type = "application/json"
    stream_content_type = "application/x-ndjson"

    def decode_request(self, body: bytes) -> HubRequest:
        return request.decode_request(body)

    def encode_request(self, hub: HubRequest, model: str) -> bytes:
        return request.encode_request(hub, model)

    def decode_response(self, body: bytes) -> DecodedResponse:
        return response.decode_response(body)

    def encode_response(self, hub: HubResponse, ctx: Context) -> bytes:
        return response.encode_response(hub, ctx)

    def stream_decoder(self) -> OllamaStreamDecoder:
        return OllamaStreamDecoder()

    def stream_encoder(self, ctx: Context) -> OllamaStreamEncoder:
        return OllamaStreamEncoder(ctx)

    def render_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_error(err)

    def render_stream_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_stream_error(err)


CODEC = OllamaCodec()
