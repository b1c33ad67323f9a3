"""OpenAI Chat Completions: the hub's own shape, so decoding is mostly validation and normalization."""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.base import Context, DecodedResponse, HubRequest, HubResponse
from omniroute_translator.codecs.openai_chat import errors, request, response
from omniroute_translator.codecs.openai_chat.stream import OpenAIChatStreamDecoder, OpenAIChatStreamEncoder

__all__ = ["CODEC", "OpenAIChatCodec"]


class OpenAIChatCodec:
    """:class:`~omniroute_translator.codecs.base.Codec` for ``FORMAT_OPENAI_CHAT``."""

    name = "openai_chat"
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

    def stream_decoder(self) -> OpenAIChatStreamDecoder:
        return OpenAIChatStreamDecoder()

    def stream_encoder(self, ctx: Context) -> OpenAIChatStreamEncoder:
        return OpenAIChatStreamEncoder(ctx)

    def render_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_error(err)

    def render_stream_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_stream_error(err)


CODEC = OpenAIChatCodec()
