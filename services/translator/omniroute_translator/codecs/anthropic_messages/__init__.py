"""Anthropic Messages (``/v1/messages``, ``/v1/messages/count_tokens``) against the hub, both as the format a
client speaks and as the format we send to Anthropic."""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.anthropic_messages import errors, request, request_encode, response
from omniroute_translator.codecs.anthropic_messages.stream import AnthropicStreamDecoder
from omniroute_translator.codecs.anthropic_messages.stream_encode import AnthropicStreamEncoder
from omniroute_translator.codecs.base import Context, DecodedResponse, HubRequest, HubResponse

__all__ = ["CODEC", "AnthropicMessagesCodec"]


class AnthropicMessagesCodec:
    """:class:`~omniroute_translator.codecs.base.Codec` for ``FORMAT_ANTHROPIC_MESSAGES``.

    ``decode_request`` also accepts ``count_tokens`` bodies (``max_tokens`` is optional there)."""

    name = "anthropic_messages"
    content_type = "application/json"
    stream_content_type = "text/event-stream"

    def decode_request(self, body: bytes) -> HubRequest:
        return request.decode_request(body)

    def encode_request(self, hub: HubRequest, model: str) -> bytes:
        return request_encode.encode_request(hub, model)

    def decode_response(self, body: bytes) -> DecodedResponse:
        return response.decode_response(body)

    def encode_response(self, hub: HubResponse, ctx: Context) -> bytes:
        return response.encode_response(hub, ctx)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def stream_encoder(self, ctx: Context) -> AnthropicStreamEncoder:
        return AnthropicStreamEncoder(ctx)

    def render_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_error(err)

    def render_stream_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_stream_error(err)


CODEC = AnthropicMessagesCodec()
