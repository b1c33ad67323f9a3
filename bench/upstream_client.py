"""The executor's upstream seam alone: CPU per provider request of each ``UPSTREAM_CLIENT``, interleaved.

``uv run python bench/upstream_client.py [--rounds 5] [--requests 3000] [--concurrency 16]`` starts a keep-alive
HTTP/1.1 server in a child process (raw asyncio protocol on uvloop, a fixed ~600 B chat completion), then in this
process runs ``Upstream.post`` + ``read()`` + ``close()`` through each client in turn (``h1`` and ``aiohttp``,
the order flipped every round so drift from the rest of the machine hits both alike), and prints each round's
CPU µs per request of this process (``time.process_time``: the client side only) and requests per second, then
the medians and h1 ÷ aiohttp. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from omniroute_executor.upstream import QueueLimits, Upstream

ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"' + b"Hello there! " * 20 + b'"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":40,"total_tokens":51}}'
)
REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req-1\r\nopenai-processing-ms: 12\r\n"
    b"x-ratelimit-remaining-requests: 9999\r\nContent-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER
)
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}],"max_tokens":64}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench", "OpenAI-Organization": "org-1"}


class _Server(asyncio.Protocol):
    """Answers every request with :data:`REPLY` once its head and Content-Length body arrived."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(REPLY)  # type: ignore[attr-defined]


async def _serve() -> None:
    server = await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


async def _phase(client: str, url: str, requests: int, concurrency: int) -> tuple[float, float]:
    up = Upstream(max_connections=concurrency, connect_timeout_s=5, read_timeout_s=10,
                  limits=QueueLimits(max_concurrent=concurrency), client=client)  # type: ignore[arg-type]  # fmt: skip

    async def worker(n: int) -> None:
        for _ in range(n):
            resp = await up.post("openai", url, HEADERS, BODY)
            try:
                assert len(await resp.read()) == len(ANSWER)
            finally:
                resp.close()

    try:
        await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm-up: connections, caches
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        done = requests // concurrency * concurrency
        return (time.process_time() - cpu) / done * 1e6, done / (time.perf_counter() - wall)
    finally:
        await up.close()


async def _main(args: argparse.Namespace, url: str) -> None:
    results: dict[str, list[tuple[float, float]]] = {"h1": [], "aiohttp": []}
    for r in range(args.rounds):
        order = ("h1", "aiohttp") if r % 2 == 0 else ("aiohttp", "h1")
        for client in order:
            cpu, rate = await _phase(client, url, args.requests, args.concurrency)
            results[client].append((cpu, rate))
            print(f"round {r + 1} {client:8} {cpu:7.1f} µs CPU/request {rate:8.0f} req/s", flush=True)
    med = {c: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for c, v in results.items()}
    for client, (cpu, rate) in med.items():
        print(f"median   {client:8} {cpu:7.1f} µs CPU/request {rate:8.0f} req/s")
    print(f"h1 ÷ aiohttp: CPU {med['h1'][0] / med['aiohttp'][0]:.2f}, req/s {med['h1'][1] / med['aiohttp'][1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve())
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        uvloop.run(_main(args, f"http://127.0.0.1:{int(server.stdout.readline())}/v1/chat/completions"))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
