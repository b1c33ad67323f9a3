"""OpenAI Responses (``POST /v1/responses``) against the hub, both as the format a client speaks and as the format
we send to a provider that serves the Responses API. The gateway is stateless: requests that need stored
responses (``previous_response_id``, ``conversation``, ``background``, ``item_reference``) are 400s."""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator.codecs.base import Context, DecodedResponse, HubRequest, HubResponse
from omniroute_translator.codecs.openai_responses import errors, request, request_encode, response
from omniroute_translator.codecs.openai_responses.stream import ResponsesStreamDecoder
from omniroute_translator.codecs.openai_responses.stream_encode import ResponsesStreamEncoder

__all__ = ["CODEC", "OpenAIResponsesCodec"]


class OpenAIResponsesCodec:
    """:class:`~omniroute_translator.codecs.base.Codec` for ``FORMAT_OPENAI_RESPONSES``."""

    name = "openai_responses"
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

    def stream_decoder(self) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder()

    def stream_encoder(self, ctx: Context) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(ctx)

    def render_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_error(err)

    def render_stream_error(self, err: common_pb2.Error) -> bytes:
        return errors.render_stream_error(err)


CODEC = OpenAIResponsesCodec()
