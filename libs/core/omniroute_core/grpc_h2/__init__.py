"""Pure-asyncio gRPC over HTTP/2, both ends: the edge's channel to the executor and the executor's server,
without gRPC core's threads.

Why: a grpc.aio call hands every event between gRPC core's EventEngine threads, its completion-queue poller
thread and the asyncio loop; on this machine that is ~11 thread wake-ups per unary call across both processes
and ~0.5 ms of latency per side when the processes idle between requests (``bench/grpc_latency.py``,
``bench/PROFILE.md``). This client runs the HTTP/2 framing in the event loop's own protocol callbacks: a call is
one socket write and, for the reply, one loop wake-up. The wire is stock gRPC: either end talks to stock peers.

Scope: the four kinds of call, with the grpc.aio call surface our clients use: a unary-reply call is awaited; a
stream of replies has ``read()`` (a message, or ``grpc.aio.EOF``), ``async for`` and ``trailing_metadata()``;
streamed requests come from a request iterator or ``write()`` / ``done_writing()`` (``_stream_calls``); every
call has ``cancel()``, ``code()`` and ``details()``. Failures raise ``grpc.aio.AioRpcError`` with the status the
server sent, ``UNAVAILABLE`` when the connection could not be made or broke, ``DEADLINE_EXCEEDED`` at the
deadline; a cancelled call raises ``asyncio.CancelledError`` like grpc.aio's. HTTP/2 as RFC 9113 asks of a
client: SETTINGS (acknowledged; the peer's initial window and frame size applied), PING acknowledged, flow
control both ways (a body larger than the peer's window waits for its WINDOW_UPDATEs; received bytes are
returned to the peer as they arrive, per stream only while less than ``_QUEUED_LIMIT`` bytes wait unread, so a
slow reader slows the server down), GOAWAY (no new stream on that connection; a unary-request call past its
last id, or refused with REFUSED_STREAM, is sent once more on a new connection, other calls fail
``UNAVAILABLE``), RST_STREAM mapped to gRPC codes, HPACK decoded by ``_hpack_decode`` (Huffman coding and the
dynamic table, as gRPC core sends them; repeated blocks are cached).
Deadlines go to the server as ``grpc-timeout`` and are enforced here too; cancellation sends
RST_STREAM(CANCEL), which cancels the server's handler. No TLS (sibling services on the cluster network), no
compression (none is advertised). A name with several addresses (a headless Service) gets a connection per
address and the calls round-robin over them (``_balancer``); the server can send GOAWAY to connections past an
age (``max_connection_age_s``) so clients reconnect and spread over new replicas.

The server (``H2Server``) has grpc.aio's server surface for generated ``add_XServicer_to_server`` functions and
serves the four kinds of method to any stock client; each call's handler runs as a task with a
``ServicerContext`` (the subset of grpc.aio's that our servicers use), cancelled at the client's deadline, on
RST_STREAM and when the client goes away. The frame loop (``_frames``) and HPACK handling are shared by both
ends. See ``_server`` and ``_server_stream`` for its contract.
"""

from __future__ import annotations

from omniroute_core import native

# the compiled modules, when built from these sources (omniroute_core.native), load ahead of the .py files
native.extend(__path__, __name__)

from omniroute_core.grpc_h2._calls import UnaryStreamCall, UnaryUnaryCall  # noqa: E402
from omniroute_core.grpc_h2._channel import H2Channel  # noqa: E402
from omniroute_core.grpc_h2._context import ServicerContext  # noqa: E402
from omniroute_core.grpc_h2._server import H2Server  # noqa: E402
from omniroute_core.grpc_h2._stream_calls import StreamStreamCall, StreamUnaryCall  # noqa: E402

__all__ = [
    "H2Channel",
    "H2Server",
    "ServicerContext",
    "StreamStreamCall",
    "StreamUnaryCall",
    "UnaryStreamCall",
    "UnaryUnaryCall",
]
