"""One HTTP/2 connection from a client (the server's side): the preface, new streams, resets and GOAWAY.

A new stream's request headers pick the handler by ``:path``; a request that is not gRPC gets an HTTP error
(405 for a method other than POST, 415 for another content type) and an unknown method ``UNIMPLEMENTED``, as
trailers-only replies. A method whose requests stream starts its handler at once (``_server_requests``); the
others once the client has sent its one request. Streams past our advertised concurrency,
or opened after our GOAWAY, are refused with RST_STREAM(REFUSED_STREAM), which tells the client the call never
started (stock clients retry it elsewhere).
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import TYPE_CHECKING, Any

import grpc

from omniroute_core.grpc_h2._frames import FrameLoop
from omniroute_core.grpc_h2._hpack import literal_field
from omniroute_core.grpc_h2._server_requests import RequestStream
from omniroute_core.grpc_h2._server_stream import ServerStream
from omniroute_core.grpc_h2._wire import (
    CONN_WINDOW,
    END_STREAM,
    GOAWAY,
    NO_ERROR,
    PREFACE,
    REFUSED_STREAM,
    RST,
    SETTINGS,
    STREAM_WINDOW,
    WINDOW,
    frame,
    grpc_message,
    parse_timeout,
)

if TYPE_CHECKING:
    from omniroute_core.grpc_h2._server import H2Server

__all__ = ["MAX_HEADER_LIST", "ServerConnection"]

# the largest request header list we decode (advertised, so stock clients fail an oversized call locally)
MAX_HEADER_LIST = 256 * 1024
# past its maximum age (with no grace limit), how long a connection waits for the client to close it once idle
AGED_IDLE_CLOSE_S = 5.0


class ServerConnection(FrameLoop):
    """One client's connection to an :class:`H2Server`."""

    def __init__(self, server: H2Server) -> None:
        super().__init__()
        self.server = server
        self.streams: dict[int, ServerStream] = {}
        self.decoder.max_header_list_size = MAX_HEADER_LIST
        self.going_away = False
        self.peer = ""
        self._linger = False  # after GOAWAY, leave closing the idle connection to the client
        self._age_timer: asyncio.TimerHandle | None = None
        self._preface: bytes | None = b""  # None once the client's preface has arrived

    # -- protocol callbacks ----------------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            host = str(peer[0])
            self.peer = f"ipv6:[{host}]:{peer[1]}" if ":" in host else f"ipv4:{host}:{peer[1]}"
        settings = struct.pack(
            ">HIHIHI", 0x3, self.server.max_streams, 0x4, STREAM_WINDOW, 0x6, MAX_HEADER_LIST
        )  # concurrent streams, our stream window, the header list we accept
        window = frame(WINDOW, 0, 0, struct.pack(">I", CONN_WINDOW - 65_535))
        self.start(transport, frame(SETTINGS, 0, 0, settings) + window)
        self.server.connections.add(self)
        if self.server.max_connection_age_s > 0:  # ±10 %: connections opened together do not all leave together
            age = self.server.max_connection_age_s * random.uniform(0.9, 1.1)
            self._age_timer = asyncio.get_running_loop().call_later(age, self._aged)

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:
            data = self._preface + data
            if len(data) < len(PREFACE):
                if not PREFACE.startswith(data):
                    self.transport.close()  # not HTTP/2 with prior knowledge
                    return
                self._preface = data
                return
            if not data.startswith(PREFACE):
                self.transport.close()
                return
            self._preface = None
            data = data[len(PREFACE) :]
        if data:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._age_timer is not None:
            self._age_timer.cancel()
        for stream in list(self.streams.values()):
            stream.abandon()
        self.wake_senders()
        self.server.forget(self)

    # -- frames ----------------------------------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers ending the client's side
            if end and not stream.half_closed:
                stream.on_data(b"", True)
            return
        if stream_id % 2 == 0:  # a client opens odd streams only (RFC 9113 §5.1.1): raised as a protocol error
            raise ValueError(f"HEADERS opening the even stream {stream_id}")
        if stream_id <= self.last_stream_id:
            return  # late headers of a stream already closed
        self.last_stream_id = stream_id
        if self.going_away or len(self.streams) >= self.server.max_streams:
            self.write(frame(RST, 0, stream_id, struct.pack(">I", REFUSED_STREAM)))
            return
        method = path = content_type = timeout = b""
        for name, value in headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
        if method != b"POST":
            self._reply_http(stream_id, b"405", end)
            return
        if not content_type.startswith(b"application/grpc"):
            self._reply_http(stream_id, b"415", end)
            return
        handler = self.server.lookup(path)
        if handler is None:
            self._trailers_only(stream_id, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {path.decode()}", end)
            return
        deadline = parse_timeout(timeout) if timeout else None
        if handler.request_streaming:  # the handler starts now and reads the requests as they come
            streaming = RequestStream(self, stream_id, handler, headers, deadline)
            self.streams[stream_id] = streaming
            streaming.start()
            if end:
                streaming.on_data(b"", True)
            return
        stream = ServerStream(self, stream_id, handler, headers, deadline)
        self.streams[stream_id] = stream
        if end:
            stream.start()

    def on_data(self, stream_id: int, data: bytes, end: bool) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None and not stream.half_closed:
            stream.on_data(data, end)

    def on_reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.abandon()

    def on_goaway(self, last_stream_id: int) -> None:
        pass  # the client opens no more streams; those running finish, then it closes the connection

    def on_protocol_error(self, why: str) -> None:
        for stream in list(self.streams.values()):
            stream.abandon()

    def _trailers_only(self, stream_id: int, code: grpc.StatusCode, details: str, ended: bool) -> None:
        cached = self.encoder.cached
        fields = [b"\x88", cached(b"content-type", b"application/grpc"), cached(b"grpc-status", b"%d" % code.value[0])]
        fields.append(literal_field(b"grpc-message", grpc_message(details)))
        self.end_stream(stream_id, fields, ended)

    def _reply_http(self, stream_id: int, status: bytes, ended: bool) -> None:
        self.end_stream(stream_id, [literal_field(b":status", status)], ended)

    def end_stream(self, stream_id: int, fields: list[bytes], ended: bool) -> None:
        """Our last header block on a stream; when the client has not ``ended`` its side, RST_STREAM(NO_ERROR)
        after it: the reply is complete, the client need send no more (RFC 9113 §8.1)."""
        self.write_headers(stream_id, self.header_block(fields), END_STREAM)
        if not ended:
            self.write(frame(RST, 0, stream_id, struct.pack(">I", NO_ERROR)))
        self.flush()

    # -- streams and shutdown --------------------------------------------------------------------------------

    def closed_stream(self, stream: ServerStream) -> None:
        popped = self.streams.pop(stream.id, None) is not None
        if popped and self.going_away and not self.streams and not self._linger:
            self.shutdown()

    def go_away(self, *, linger: bool = False) -> None:
        """GOAWAY: the streams received so far run to their end, later ones are refused; closed once idle, or
        with ``linger`` by the client (closing first could reset a call already on its way, which the client
        could then not tell from one that failed; with the GOAWAY it knows the call was not processed)."""
        if self.closed:
            return
        self._linger = linger
        if not self.going_away:
            self.going_away = True
            self.write(frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream_id, NO_ERROR)))
        if not self.streams and not linger:
            self.shutdown()

    def _aged(self) -> None:
        """The server's ``max_connection_age_s`` is over: GOAWAY, so the client reconnects (and rebalances);
        the calls running get ``max_connection_age_grace_s`` (None: no limit) to end."""
        if self.going_away:  # the server is stopping: its own grace applies
            return
        self.go_away(linger=True)
        grace = self.server.max_connection_age_grace_s
        later = AGED_IDLE_CLOSE_S if grace is None else grace
        self._age_timer = asyncio.get_running_loop().call_later(later, self._age_over, grace is not None)

    def _age_over(self, stop_calls: bool) -> None:
        self._linger = False
        if stop_calls:
            self.stop_streams()  # their trailers are written as they end; the last one closes the connection
        if not self.streams:
            self.shutdown()

    def stop_streams(self) -> list[Any]:
        """Cancel every running call (a stopping server's grace is over); returns their tasks."""
        tasks = [stream.task for stream in self.streams.values() if stream.task is not None]
        for stream in list(self.streams.values()):
            stream.stop()
        return tasks
