"""CPU per request of the executor's engine alone, in one process: no sockets, no gRPC, no other service.

``uv run python bench/executor_cpu.py [--requests 3000] [--rounds 5] [--stream] [--body-bytes 300] [--profile]``
runs ``Engine.execute`` (or ``execute_stream``) for the benchmark's chat request (OpenAI → OpenAI, the
same-format fast path) against an in-process fake provider that answers with the mock provider's canned bytes,
with the real usage publisher batching onto a JetStream stand-in that accepts every publish. It prints the CPU
microseconds per request of each round (``time.process_time``) and their median; ``--profile`` runs one more round
under cProfile and prints the functions with the most own and inclusive time.

What it leaves out on purpose: aiohttp's client (the upstream package), the gRPC server in front of the engine and
Redis (the breaker store runs on its local copy). Compare two commits by running this alternately on each.
"""

from __future__ import annotations

import sys
from pathlib import Path

# the repository root instead of bench/ (whose profile.py would shadow the standard library's, which cProfile uses)
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import uvloop
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from bench.mock_provider import Profile, _Replies
from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core import grpcx, jsonx
from omniroute_core.catalog import load_catalog
from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.snapshot import ConfigSnapshot, ProviderConnection
from omniroute_executor.engine import Engine
from omniroute_executor.prepare import Credentials
from omniroute_executor.translate import TranslatorClient
from omniroute_executor.upstream import QueueLimits
from omniroute_executor.usage_events import UsagePublisher
from omniroute_executor.usage_spool import Spool

MODEL = "openai/gpt-4o-mini"
_HEADERS = CIMultiDictProxy(
    CIMultiDict({"content-type": "application/json", "x-request-id": "req-up", "openai-processing-ms": "3"})
)


class _Response:
    """The parts of :class:`~omniroute_executor.upstream.UpstreamResponse` the engine uses."""

    def __init__(self, body: bytes, chunks: list[bytes]) -> None:
        self.status = 200
        self.headers: Mapping[str, str] = _HEADERS
        self._body = body
        self._chunks = chunks

    async def read(self) -> bytes:
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def close(self) -> None:
        pass


class _Provider:
    """Answers every POST at once (after one trip through the event loop, as a socket read would)."""

    def __init__(self) -> None:
        replies = _Replies(Profile())
        self._body = replies.completion("gpt-4o-mini")
        # the SSE events without their HTTP chunk framing, one per network read
        self._events = [c.split(b"\r\n", 1)[1][:-2] for c in replies.events("gpt-4o-mini", True)[:-1]]
        self.default_limits = QueueLimits()

    async def post(self, pool: str, url: str, headers: Mapping[str, str], body: bytes, **_: Any) -> _Response:
        await asyncio.sleep(0)
        return _Response(self._body, self._events)


class _JetStream:
    async def publish(self, subject: str, payload: bytes, **_: Any) -> None:
        return None


def _request_body(size: int) -> bytes:
    """The benchmark's chat body, its message padded to about ``size`` bytes in all."""
    doc: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 64}
    pad = max(0, size - len(jsonx.dumps(doc)))
    doc["messages"][0]["content"] += " x" * (pad // 2)
    return jsonx.dumps(doc)


def _engine(folder: Path) -> tuple[Engine, UsagePublisher]:
    cipher = Cipher(generate_encryption_key())
    conn = ProviderConnection(
        id="conn-bench",
        provider="openai",
        name="bench",
        base_url="http://127.0.0.1:9/v1",
        api_key_enc=cipher.encrypt("sk-bench-upstream", aad="conn-bench"),
    )
    snap = ConfigSnapshot.build(1, (conn,), (), {})
    publisher = UsagePublisher(_JetStream(), CollectorRegistry(), queue_size=100_000, spool=Spool(folder))  # type: ignore[arg-type]
    engine = Engine(
        catalog=load_catalog(),
        snapshot=lambda: snap,
        credentials=Credentials(cipher),
        upstream=_Provider(),  # type: ignore[arg-type]
        translator=TranslatorClient(grpcx.insecure_channel("127.0.0.1:9")),  # never called on the fast path
        publisher=publisher,
    )
    return engine, publisher


async def _one(engine: Engine, req: executor_pb2.ExecuteRequest, stream: bool) -> None:
    if stream:
        async for chunk in engine.execute_stream(req, executor_pb2.UpstreamTiming()):
            del chunk
    else:
        reply = await engine.execute(req)
        assert reply.status == 200, reply


async def _round(engine: Engine, body: bytes, args: argparse.Namespace) -> float:
    """CPU seconds per request over ``args.requests`` requests, ``args.concurrency`` at a time."""
    requests = [
        executor_pb2.ExecuteRequest(
            meta=common_pb2.RequestMeta(
                request_id=f"req-{n}",
                key_id="key-bench",
                client_format=common_pb2.FORMAT_OPENAI_CHAT,
                operation=common_pb2.OPERATION_CHAT,
                model=MODEL,
                stream=args.stream,
                endpoint="/v1/chat/completions",
            ),
            body=body,
        )
        for n in range(args.requests)
    ]
    queue = iter(requests)

    async def worker() -> None:
        for req in queue:
            await _one(engine, req, args.stream)

    count: int = args.requests
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    await asyncio.sleep(0.05)  # let the usage publisher's last batch go (its work counts)
    return (time.process_time() - start) / count


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine, publisher = _engine(Path(folder))
        publisher.start()
        body = _request_body(args.body_bytes)
        if args.stream:
            body = body[:-1] + b',"stream":true}'
        await _round(engine, body, argparse.Namespace(**{**vars(args), "requests": 500}))  # warm-up
        results = []
        for n in range(args.rounds):
            results.append(await _round(engine, body, args) * 1e6)
            print(f"round {n + 1}: {results[-1]:.1f} µs CPU per request", flush=True)
        print(f"median: {statistics.median(results):.1f} µs ({len(body)} B body, stream={args.stream})")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _round(engine, body, args)
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        await publisher.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--body-bytes", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=35)
    uvloop.run(main(parser.parse_args()))
