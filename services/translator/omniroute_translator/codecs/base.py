"""The codec protocol: what every wire format implements against the hub.

The hub is OpenAI Chat Completions JSON plus the extension fields of ``proto/omniroute/v1/hub.schema.json``:

- a hub request is a chat-completions request dict;
- a hub response is a ``chat.completion`` dict whose ``usage`` is in OpenAI's shape
  (``prompt_tokens`` includes cached tokens; details under ``prompt_tokens_details`` /
  ``completion_tokens_details``);
- a hub stream is a sequence of ``chat.completion.chunk`` dicts; a usage-only chunk has ``choices: []``;
  a provider error inside a stream is a hub error chunk ``{"error": {message, type, code, param, status}}``
  (see :mod:`omniroute_translator.codecs.hub`). The end of a stream is not a chunk: decoders report it as
  ``complete`` and encoders render it with ``finish``.

Everything here is pure: no I/O, no clock, no randomness. Whatever a codec needs that would come from the
outside world (the model name to report, the request id, the creation time) arrives as a :class:`Context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from omniroute.v1 import common_pb2

__all__ = [
    "Codec",
    "CodecError",
    "Context",
    "DecodedResponse",
    "HubChunk",
    "HubRequest",
    "HubResponse",
    "StreamDecoder",
    "StreamEncoder",
    "StreamEnd",
]

HubRequest = dict[str, Any]
HubResponse = dict[str, Any]
HubChunk = dict[str, Any]


class CodecError(Exception):
    """A body that cannot be decoded or served; ``error`` is the hub error to report to the client."""

    def __init__(self, error: common_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Context:
    """What an encoder writes that the hub does not carry: the model name to report to the client, the
    request id (used for ids the provider did not give) and the creation time in Unix seconds."""

    model: str = ""
    request_id: str = ""
    created_unix: int = 0


@dataclass(frozen=True, slots=True)
class DecodedResponse:
    """A provider response in hub form with its usage in the hub's vocabulary."""

    hub: HubResponse
    usage: common_pb2.Usage = field(default_factory=common_pb2.Usage)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What a decoder still held when the input ended, and whether the terminal event was seen."""

    chunks: list[HubChunk]
    complete: bool


class StreamDecoder(Protocol):
    """Native stream bytes in, hub chunks out. One instance per stream; it keeps the partial-event state.

    ``feed`` accepts bytes split anywhere (inside an event, a CRLF or a UTF-8 sequence) and returns the hub
    chunks of the events it completed. Once the terminal event was seen ``complete`` is true and later input is
    ignored; neither ``feed`` nor ``end`` returns chunks after that. ``end`` is called once when the input ends.
    """

    @property
    def complete(self) -> bool: ...

    def feed(self, data: bytes) -> list[HubChunk]: ...

    def end(self) -> StreamEnd: ...


class StreamEncoder(Protocol):
    """Hub chunks in, native stream bytes out. One instance per stream (formats with a stateful event sequence,
    such as Anthropic's content blocks, keep it here).

    ``encode`` returns the bytes of zero or more events for one hub chunk (a hub error chunk renders as the
    format's error event); ``finish`` the terminal event(s), given the stream's usage; ``error`` a mid-stream
    error event.
    """

    def encode(self, chunk: HubChunk) -> bytes: ...

    def finish(self, usage: common_pb2.Usage) -> bytes: ...

    def error(self, err: common_pb2.Error) -> bytes: ...


class Codec(Protocol):
    """One wire format against the hub. Decoders raise :class:`CodecError`; encoders accept any valid hub value.

    - ``decode_request``: a client (or cached) request body into a hub request; validation failures are
      400 errors in hub vocabulary.
    - ``encode_request``: a hub request into this format's request body, naming ``model``.
    - ``decode_response``: a provider's complete response body into a hub response plus usage; an error
      envelope in the body becomes a :class:`CodecError` carrying the provider's error.
    - ``encode_response``: a hub response into this format's response body.
    - ``render_error`` / ``render_stream_error``: a hub error as this format's error body / stream error event.
    """

    @property
    def name(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def stream_content_type(self) -> str: ...

    def decode_request(self, body: bytes) -> HubRequest: ...

    def encode_request(self, hub: HubRequest, model: str) -> bytes: ...

    def decode_response(self, body: bytes) -> DecodedResponse: ...

    def encode_response(self, hub: HubResponse, ctx: Context) -> bytes: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def stream_encoder(self, ctx: Context) -> StreamEncoder: ...

    def render_error(self, err: common_pb2.Error) -> bytes: ...

    def render_stream_error(self, err: common_pb2.Error) -> bytes: ...
