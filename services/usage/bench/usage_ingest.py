"""Usage ingest and summary-query benchmark (a script, not a test).

Run: ``uv run python services/usage/bench/usage_ingest.py [--events N] [--writers W] [--e2e M]``.

1. Ingest: synthetic events (spread over ``--days`` days, ``--keys`` keys, ten provider/model pairs, three
   connections each) are priced and stored exactly as the writer does (``event_row`` + ``UsageStore.insert_batch``:
   COPY, insert, the three rollups, one transaction per batch) by ``--writers`` concurrent writers.
2. Summaries: every management query over the loaded data, ``--repeat`` times each; prints median and worst ms.
3. End to end (``--e2e`` events, 0 skips): published to JetStream, consumed by a real ``UsageWriter``.

Uses ``DATABASE_URL`` / ``NATS_URL`` when set, else starts private servers from the registry packages. The
database is a fresh one, dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from omniroute.v1 import common_pb2, usage_pb2
from omniroute_core import events
from omniroute_devservers.servers import command, ensure_database, free_port, url_for, wait_ready
from omniroute_usage import queries
from omniroute_usage.budget_api import check_budget
from omniroute_usage.consumer import UsageWriter, WriterConfig
from omniroute_usage.metrics import WriterMetrics
from omniroute_usage.pricing import PriceBook, load_shipped
from omniroute_usage.schema import migrate_usage
from omniroute_usage.store import Row, UsageStore, event_row, open_pool

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "o4-mini"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5"),
    ("gemini", "gemini-2.5-flash"),
    ("mistral", "mistral-small-latest"),
    ("groq", "llama-3.3-70b-versatile"),
    ("deepseek", "deepseek-chat"),
    ("xai", "grok-4"),
]


@asynccontextmanager
async def _server(kind: str, env_url: str | None) -> AsyncIterator[str]:
    if env_url:
        yield env_url
        return
    root = Path(tempfile.mkdtemp(prefix=f"usage-bench-{kind}-"))
    port = free_port()
    with (root / f"{kind}.log").open("wb") as log:
        proc = subprocess.Popen(command(kind, root / kind, port), stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        wait_ready(kind, port, proc=proc)
        if kind == "postgres":
            ensure_database(port)
        yield url_for(kind, port)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def _event(rng: random.Random, n: int, ts_ms: int, keys: int) -> usage_pb2.UsageEvent:
    provider, model = MODELS[rng.randrange(len(MODELS))]
    inp = rng.randrange(50, 8000)
    out = rng.randrange(10, 2000)
    failed = rng.random() < 0.03
    event = usage_pb2.UsageEvent(
        event_id=f"bench-{n}",
        request_id=f"req-{n // 2 if failed else n}",
        ts_unix_ms=ts_ms,
        key_id=f"key-{rng.randrange(keys)}",
        provider=provider,
        model=model,
        requested_model=f"{provider}/{model}",
        connection_id=f"{provider}-conn-{rng.randrange(3)}",
        status=502 if failed else 200,
        latency_ms=int(rng.lognormvariate(6.5, 0.6)),
        ttft_ms=rng.randrange(80, 900),
        stream=rng.random() < 0.7,
        attempt=1,
        error_type="upstream_error" if failed else "",
        endpoint="/v1/chat/completions",
    )
    event.usage.CopyFrom(
        common_pb2.Usage(
            input_tokens=inp,
            output_tokens=out,
            cached_input_tokens=inp // 3 if rng.random() < 0.3 else 0,
            reasoning_tokens=out // 2 if model.startswith("o4") else 0,
            total_tokens=inp + out,
        )
    )
    return event


def _row(book: PriceBook, event: usage_pb2.UsageEvent, received: dt.datetime) -> Row:
    u = event.usage
    cost = book.cost(
        event.provider,
        event.model,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_input_tokens=u.cached_input_tokens,
        reasoning_tokens=u.reasoning_tokens,
    )
    return event_row(event, event.event_id, received, cost)


async def ingest(store: UsageStore, args: argparse.Namespace) -> None:
    book = PriceBook(load_shipped(), {})
    now_ms = int(time.time() * 1000)
    span_ms = args.days * 86_400_000
    next_n = 0
    done = 0
    start = time.perf_counter()

    def ts_of(rng: random.Random, n: int) -> int:
        if args.order == "random":
            return now_ms - rng.randrange(span_ms)
        # as live traffic arrives: oldest first, a few seconds of producer clock skew
        return now_ms - span_ms + n * span_ms // args.events + rng.randrange(-5000, 5000)

    def next_rows(rng: random.Random, received: dt.datetime) -> list[Row]:
        nonlocal next_n
        first = next_n
        next_n = min(args.events, next_n + args.batch)
        return [_row(book, _event(rng, n, ts_of(rng, n), args.keys), received) for n in range(first, next_n)]

    async def writer(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        received = dt.datetime.now(dt.UTC)
        rows = next_rows(rng, received)
        while rows:
            # the next batch is generated while PostgreSQL works on this one (the writer decodes meanwhile too)
            task = asyncio.create_task(store.insert_batch(rows))
            upcoming = next_rows(rng, received)
            stored = len(await task)
            done += stored
            if done // 100_000 != (done - len(rows)) // 100_000:
                rate = done / (time.perf_counter() - start)
                print(f"  {done:>10,} events stored, {rate:,.0f}/s", flush=True)
            rows = upcoming

    await asyncio.gather(*(writer(i) for i in range(args.writers)))
    elapsed = time.perf_counter() - start
    print(f"ingest: {done:,} events in {elapsed:.1f}s = {done / elapsed:,.0f} events/s ({args.writers} writers)")


async def _time(label: str, call: Callable[[], Awaitable[Any]], repeat: int) -> None:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    print(f"  {label:<48} median {statistics.median(samples):7.1f} ms   worst {max(samples):7.1f} ms")


async def summaries(pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    await pool.execute("ANALYZE")
    now = dt.datetime.now(dt.UTC)
    days = {"from": (now - dt.timedelta(days=args.days)).isoformat(), "granularity": "day"}
    week = {"keyId": "key-7", "from": (now - dt.timedelta(days=7)).isoformat()}
    errors = {"keyId": "key-3", "status": "error"}
    print(f"summary queries ({args.repeat} runs each):")
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("history, hourly, last 24h, all keys", lambda: queries.usage_history(pool, {}, now)),
        ("history, daily, whole range, all keys", lambda: queries.usage_history(pool, days, now)),
        ("history, hourly, 7 days, one key", lambda: queries.usage_history(pool, week, now)),
        ("connection usage, 30 days", lambda: queries.connection_usage(pool, "openai-conn-1", {}, now)),
        ("usage logs, page 1 (100), last 24h", lambda: queries.usage_logs(pool, {}, now)),
        ("usage logs, one key, status=error, 24h", lambda: queries.usage_logs(pool, errors, now)),
        ("request logs, page 1 (100), last 24h", lambda: queries.request_logs(pool, {}, now)),
        ("request logs, one key, last 24h", lambda: queries.request_logs(pool, {"keyId": "key-3"}, now)),
        ("telemetry summary, last 60 min", lambda: queries.telemetry_summary(pool, {}, now)),
        ("telemetry summary, last 24 h", lambda: queries.telemetry_summary(pool, {"window": "1440"}, now)),
        ("CheckBudget (monthly budget)", lambda: check_budget(pool, "key-5")),
    ]  # fmt: skip
    await pool.execute("INSERT INTO usage_budgets (key_id, limit_usd, period) VALUES ('key-5', 100, 'monthly')")
    for label, call in cases:
        await _time(label, call, args.repeat)


async def end_to_end(store: UsageStore, nats_url: str, args: argparse.Namespace) -> None:
    nc = await events.connect(nats_url, "usage-bench")
    js = nc.jetstream()
    await events.ensure_usage_stream(js)
    subject = f"{events.USAGE_SUBJECT_PREFIX}.bench{uuid.uuid4().hex[:6]}"
    rng = random.Random(99)
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    acks = []
    size = args.e2e_batch
    # as the executor publishes (omniroute_executor.usage_events): up to 100 events per message
    for first in range(0, args.e2e, size):
        batch = [
            _event(rng, 10**12 + n, now_ms - rng.randrange(60_000), args.keys)
            for n in range(first, min(args.e2e, first + size))
        ]
        body = usage_pb2.UsageEventBatch(events=batch).SerializeToString()
        headers = {
            "Nats-Msg-Id": "batch-" + batch[0].event_id,
            events.USAGE_ENCODING_HEADER: events.USAGE_BATCH_ENCODING,
        }
        acks.append(await js.publish_async(subject, body, headers=headers))
        if len(acks) >= 200:
            await asyncio.gather(*acks)
            acks.clear()
    await asyncio.gather(*acks)
    published = time.perf_counter() - t0
    print(f"e2e: published {args.e2e:,} events in {published:.1f}s ({args.e2e / published:,.0f}/s, {size} a message)")
    metrics = WriterMetrics.create(CollectorRegistry())
    config = WriterConfig(
        durable=f"bench-{uuid.uuid4().hex[:6]}", filter_subject=subject, batch_size=max(1, args.fetch // size)
    )
    writer = UsageWriter(js, store, metrics, config)
    sub = await writer.subscribe()
    t0 = time.perf_counter()
    task = asyncio.create_task(writer.run(sub))
    while metrics.stored._value.get() < args.e2e:  # noqa: ASYNC110 (polling a metric, there is no event)
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    writer.stop()
    await task
    await js.delete_consumer(events.USAGE_STREAM, config.durable)
    await nc.close()
    print(f"e2e: one UsageWriter stored {args.e2e:,} events in {elapsed:.1f}s = {args.e2e / elapsed:,.0f} events/s")


async def main(args: argparse.Namespace) -> None:
    import os

    async with _server("postgres", os.environ.get("DATABASE_URL")) as pg_url:
        name = f"usage_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(pg_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = pg_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            conn = await asyncpg.connect(dsn)
            await migrate_usage(conn)
            await conn.close()
            pool = await open_pool(dsn, max_size=max(args.writers, 2))
            store = UsageStore(pool)
            await ingest(store, args)
            await summaries(pool, args)
            if args.e2e:
                async with _server("nats", os.environ.get("NATS_URL")) as nats_url:
                    await end_to_end(store, nats_url, args)
            await pool.close()
        finally:
            if not args.keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--e2e", type=int, default=100_000)
    parser.add_argument("--e2e-batch", type=int, default=100, help="events per JetStream message")
    parser.add_argument(
        "--fetch",
        type=int,
        default=50_000,
        help="events per writer transaction (e2e; default: the writer's 500 messages)",
    )
    parser.add_argument("--order", choices=("time", "random"), default="time", help="event timestamps")
    parser.add_argument("--keep", action="store_true")
    asyncio.run(main(parser.parse_args()))
