"""CPU per event of the usage service and of PostgreSQL at a steady, moderate rate (a script, not a test).

Run: ``uv run python services/usage/bench/usage_cpu.py [--rate 500] [--per-message 5] [--baseline DIR]``.

Starts a private PostgreSQL and, per variant, a NATS server, a database and the real service
(``python -m omniroute_usage.main``), then publishes ``UsageEventBatch`` messages of ``--per-message`` events at
``--rate`` events/s (as the executor does under the benchmark's load: small messages, many per second) for
``--seconds``, waits until every event is stored, and prints the CPU microseconds per event of the service process
and of the PostgreSQL process tree (every backend, autovacuum and the WAL writer included). With ``--baseline DIR``
(a directory holding another revision's ``omniroute_usage`` package, e.g. from
``git archive <rev> services/usage/omniroute_usage | tar -x -C DIR --strip-components=2``) a second service runs that
code, on its own NATS and database, and the phases alternate A B, B A, … so load from elsewhere hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import psutil

from omniroute.v1 import usage_pb2
from omniroute_core import events
from omniroute_devservers.servers import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from usage_ingest import _event, _server

from bench.targets import tree_cpu_seconds as _cpu


def _postgres_pid(port: int) -> int:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    raise RuntimeError(f"no process listens on {port}")


class Variant:
    def __init__(self, name: str, path: str | None, pg_url: str, nats_url: str) -> None:
        self.name, self.path, self.nats_url = name, path, nats_url
        self.db = f"usage_cpu_{uuid.uuid4().hex[:8]}"
        self.dsn = pg_url.rsplit("/", 1)[0] + f"/{self.db}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.rows: list[tuple[float, float, float]] = []

    async def start(self, admin: asyncpg.Connection) -> None:
        await admin.execute(f'CREATE DATABASE "{self.db}"')
        env = {**os.environ, "DATABASE_URL": self.dsn, "NATS_URL": self.nats_url, "USAGE_PORT": str(free_port())}
        env["METRICS_PORT"] = "0"
        if self.path:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (self.path, env.get("PYTHONPATH"))))
        self.log = open(Path(tempfile.gettempdir()) / f"usage-cpu-{self.name}.log", "wb")  # noqa: SIM115, ASYNC230
        self.proc = subprocess.Popen([sys.executable, "-m", "omniroute_usage.main"], env=env, stdout=self.log,  # noqa: ASYNC220
                                     stderr=subprocess.STDOUT)  # fmt: skip
        self.nc = await events.connect(self.nats_url, f"usage-cpu-{self.name}")
        self.js = self.nc.jetstream()
        await events.ensure_usage_stream(self.js)
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=1)
        while await self.pool.fetchval("SELECT to_regclass('usage_events')") is None:  # noqa: ASYNC110 (the service migrates)
            await asyncio.sleep(0.2)

    async def stored(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM usage_events"))

    async def phase(self, args: argparse.Namespace, pg_pid: int, rng: random.Random) -> tuple[float, float, float]:
        assert self.proc is not None
        n_msgs = int(args.rate * args.seconds / args.per_message)
        interval = args.per_message / args.rate
        before_usage, before_pg = _cpu([self.proc.pid]), _cpu([pg_pid])
        start = time.monotonic()
        now_ms = int(time.time() * 1000)
        for i in range(n_msgs):
            batch = [
                _event(rng, self.sent + j, now_ms + int((time.monotonic() - start) * 1000), args.keys)
                for j in range(args.per_message)
            ]
            for event in batch:
                event.event_id = f"{self.name}-{uuid.uuid4().hex}"
            self.sent += args.per_message
            body = usage_pb2.UsageEventBatch(events=batch).SerializeToString()
            headers = {
                "Nats-Msg-Id": "batch-" + batch[0].event_id,
                events.USAGE_ENCODING_HEADER: events.USAGE_BATCH_ENCODING,
            }
            await self.js.publish(f"{events.USAGE_SUBJECT_PREFIX}.openai", body, headers=headers)
            await asyncio.sleep(max(0.0, start + (i + 1) * interval - time.monotonic()))
        while await self.stored() < self.sent:  # noqa: ASYNC110 (polling the database, there is no event)
            await asyncio.sleep(0.05)
        lag = time.monotonic() - start - args.seconds
        usage = (_cpu([self.proc.pid]) - before_usage) / (n_msgs * args.per_message) * 1e6
        pg = (_cpu([pg_pid]) - before_pg) / (n_msgs * args.per_message) * 1e6
        row = (usage, pg, lag)
        self.rows.append(row)
        return row

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.log.close()


async def main(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        pg_url = await stack.enter_async_context(_server("postgres", None))
        pg_pid = _postgres_pid(int(pg_url.rsplit(":", 1)[1].split("/")[0]))
        admin = await asyncpg.connect(pg_url)
        variants = [Variant("A", None, pg_url, await stack.enter_async_context(_server("nats", None)))]
        if args.baseline:
            nats_b = await stack.enter_async_context(_server("nats", None))
            variants.append(Variant("B", args.baseline, pg_url, nats_b))
        try:
            for v in variants:
                await v.start(admin)
            rng = random.Random(7)
            await asyncio.sleep(3)
            idle = [(_cpu([v.proc.pid]) if v.proc else 0.0) for v in variants], _cpu([pg_pid])
            await asyncio.sleep(5)
            print("idle CPU ms/s: " + ", ".join(f"{v.name} {(_cpu([v.proc.pid]) - c) * 200:.1f}"
                                                for v, c in zip(variants, idle[0], strict=True) if v.proc)
                  + f", postgres {(_cpu([pg_pid]) - idle[1]) * 200:.1f}", flush=True)  # fmt: skip
            for v in variants:  # warm-up: caches, prepared statements, the first pages of every table
                await v.phase(argparse.Namespace(**{**vars(args), "seconds": 2.0}), pg_pid, rng)
                v.rows.clear()
            for r in range(args.rounds):
                for v in variants if r % 2 == 0 else variants[::-1]:
                    usage, pg, lag = await v.phase(args, pg_pid, rng)
                    print(f"round {r + 1} {v.name}: usage {usage:6.1f} µs/event, postgres {pg:6.1f}, "
                          f"drain lag {lag:.2f}s", flush=True)  # fmt: skip
            print(f"\nmedians over {args.rounds} rounds, {args.rate:g} events/s in messages of {args.per_message}:")
            for v in variants:
                med = [statistics.median(r[i] for r in v.rows) for i in range(3)]
                print(f"{v.name} ({v.path or 'this tree'}): usage {med[0]:.1f} µs/event, postgres {med[1]:.1f}")
        finally:
            for v in variants:
                v.stop()
                await v.nc.close()
                await v.pool.close()
            for v in variants:
                await admin.execute(f'DROP DATABASE IF EXISTS "{v.db}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--per-message", type=int, default=10, help="events per JetStream message")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--baseline", help="directory with another revision's omniroute_usage package (B)")
    asyncio.run(main(parser.parse_args()))
