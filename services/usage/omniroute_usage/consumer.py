"""The usage writer: a durable JetStream pull consumer that stores usage events in PostgreSQL in batches.

Producers (the executor) publish serialised ``omniroute.v1.UsageEvent`` messages, or ``UsageEventBatch`` messages
marked ``Omniroute-Encoding: batch`` (several events per message), on the subject
``omniroute.usage.<provider>``, where ``<provider>`` is the provider id lower-cased with every character outside
``[a-z0-9_-]`` replaced by ``_`` (``unknown`` when empty), with the ``Nats-Msg-Id`` header set to ``event_id``.
The writer consumes ``omniroute.usage.>`` regardless of the provider part.

Delivery contract, per batch: fetch up to ``batch_size`` messages, decode them, store them in one transaction
(``ON CONFLICT (event_id) DO NOTHING``), and only then acknowledge them. After a batch that was not full, the next
fetch waits until ``batch_linger_s`` has passed since this one's (the messages arriving meanwhile make one batch).
Hence:

- a crash before the commit: nothing stored, the messages are redelivered after ``ack_wait`` and stored once;
- a crash after the commit but before the acks: redelivered, conflict on ``event_id``, not counted twice;
- PostgreSQL unreachable: nothing is acknowledged; the writer retries the same batch with exponential backoff,
  marking the messages in progress so JetStream does not hand them to another replica meanwhile;
- each event is priced before it is stored (``cost_usd``), and the rollups are updated in the same transaction;
  after the acks, the keys of the newly stored events that have a budget are checked for a due budget warning;
- an undecodable message, or a row PostgreSQL rejects as data: logged, counted as invalid and terminated (no
  redelivery), so it cannot wedge the consumer; the rest of its batch is stored normally.

An event with an empty ``event_id`` is stored under its ``Nats-Msg-Id`` header, else under
``nats:<stream>:<stream sequence>``, which is stable across redeliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from omniroute.v1 import usage_pb2
from omniroute_core.events import (
    USAGE_BATCH_ENCODING,
    USAGE_ENCODING_HEADER,
    USAGE_STREAM,
    USAGE_SUBJECT_PREFIX,
    ensure_usage_stream,
)
from omniroute_usage.budgets import BudgetWarner
from omniroute_usage.metrics import Observed, WriterMetrics
from omniroute_usage.pricing import PriceBook, load_shipped
from omniroute_usage.pricing_db import PricingSource, StaticPricing
from omniroute_usage.store import COLUMNS, Row, UsageStore, event_row

__all__ = ["UsageWriter", "WriterConfig"]

log = logging.getLogger(__name__)

# PostgreSQL classes 22 (data exception) and 23 (integrity violation): retrying the same row can never succeed.
# Every other failure (connection refused or lost, shutdown, failover, deadlock) is worth retrying.
_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
_KEY_ID = COLUMNS.index("key_id")
_COL = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """How the writer consumes. ``filter_subject`` narrows the durable consumer (e.g. one shard of providers)."""

    durable: str = "usage-writer"
    batch_size: int = 500
    batch_wait_s: float = 0.2
    # after a batch that was not full, wait until this long after its fetch before fetching again, so that under a
    # steady trickle the messages meanwhile arrived make one batch (one transaction, one budget check) instead of
    # one each; a full batch fetches again at once, and the first message after a quiet spell is not delayed
    batch_linger_s: float = 0.0
    ack_wait_s: float = 30.0
    filter_subject: str = f"{USAGE_SUBJECT_PREFIX}.>"
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0


class UsageWriter:
    """Runs the consume-store-ack loop until :meth:`stop`; see the module docstring for the delivery contract."""

    def __init__(
        self,
        js: JetStreamContext,
        store: UsageStore,
        metrics: WriterMetrics,
        config: WriterConfig,
        pricing: PricingSource | StaticPricing | None = None,
        budgets: BudgetWarner | None = None,
    ) -> None:
        """``pricing`` prices each event before it is stored (``None``: the shipped prices only); ``budgets``
        checks the keys of each stored batch for a due budget warning (``None``: no warnings)."""
        self._budgets = budgets
        self._js = js
        self._pricing = pricing or StaticPricing(PriceBook(load_shipped(), {}))
        self._store = store
        self._metrics = metrics
        self._config = config
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in flight is stored and acknowledged (or, if PostgreSQL is
        down, handed back to JetStream for immediate redelivery)."""
        self._stopping.set()

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """Bind to the durable consumer, creating it when missing (an existing one keeps its configuration)."""
        c = self._config
        config = ConsumerConfig(
            durable_name=c.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=c.ack_wait_s,
            # room for a batch in flight plus the next fetch on several replicas sharing the durable
            max_ack_pending=c.batch_size * 8,
        )
        return await self._js.pull_subscribe(c.filter_subject, durable=c.durable, stream=USAGE_STREAM, config=config)

    async def run(self, sub: JetStreamContext.PullSubscription | None = None) -> None:
        """Consume until :meth:`stop`. NATS errors are logged and retried; they never end the loop. When the
        consumer or the stream is gone (NATS lost its storage, an operator deleted it), both are recreated."""
        current: JetStreamContext.PullSubscription | None = sub if sub is not None else await self.subscribe()
        delay = self._config.retry_initial_s
        try:
            while not self._stopping.is_set():
                if current is None:
                    current = await self._resubscribe()
                    if current is None:
                        await self._pause(delay)
                        delay = min(delay * 2, self._config.retry_max_s)
                        continue
                try:
                    msgs = await current.fetch(self._config.batch_size, timeout=self._config.batch_wait_s)
                except TimeoutError:
                    continue  # nothing to do within batch_wait; look at the stop flag again
                except nats.errors.Error as exc:
                    log.warning("usage fetch failed, retrying: %r", exc)
                    if isinstance(exc, nats.js.errors.APIError):
                        # JetStream answered but not with messages: most often the consumer no longer exists
                        await _unsubscribe(current)
                        current = None
                    await self._pause(delay)
                    delay = min(delay * 2, self._config.retry_max_s)
                    continue
                fetched = time.monotonic()
                delay = self._config.retry_initial_s
                # a batch already delivered to us is finished even when stop() came during the fetch
                await self._handle(msgs)
                rest = self._config.batch_linger_s - (time.monotonic() - fetched)
                if len(msgs) < self._config.batch_size and rest > 0:
                    await self._pause(rest)
        finally:
            if current is not None:
                await _unsubscribe(current)

    async def _resubscribe(self) -> JetStreamContext.PullSubscription | None:
        try:
            await ensure_usage_stream(self._js)
            return await self.subscribe()
        except nats.errors.Error as exc:
            log.warning("usage consumer not recreated yet: %r", exc)
            return None

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        received_at = dt.datetime.now(dt.UTC)
        book = await self._pricing.book()
        groups: list[tuple[Msg, list[Row]]] = []
        for msg in msgs:
            try:
                events = _decode(msg)
            except DecodeError as exc:
                self._metrics.invalid.inc()
                log.error(
                    "undecodable usage message terminated: %s",
                    exc,
                    extra={"subject": msg.subject, "stream_seq": msg.metadata.sequence.stream},
                )
                await _settle(msg.term())
                continue
            rows = [
                event_row(event, _event_id(event, msg, i), received_at, _cost(book, event))
                for i, event in enumerate(events)
            ]
            if rows:
                groups.append((msg, rows))
            else:
                await _settle(msg.ack())  # an empty batch: nothing to store
        if groups:
            await self._store_then_ack(groups)

    async def _store_then_ack(self, groups: Sequence[tuple[Msg, list[Row]]]) -> None:
        """Store every row of every message in one transaction, then ack the messages.

        A data error (a row PostgreSQL rejects) is isolated: each message is retried alone, and inside a batch
        message each row alone; only the rejected rows are dropped (logged, counted), and a single-event message
        that PostgreSQL rejects is terminated so it cannot wedge the consumer.
        """
        rows = [row for _, group in groups for row in group]
        msgs = [msg for msg, _ in groups]
        delay = self._config.retry_initial_s
        while True:
            start = time.perf_counter()
            try:
                new_ids = await self._store.insert_batch(rows)
            except _DATA_ERRORS as exc:
                self._metrics.failures.inc()
                if len(groups) > 1:
                    for one in groups:
                        await self._store_then_ack([one])
                    return
                ((msg, group),) = groups
                if len(group) == 1:
                    self._metrics.invalid.inc()
                    log.error(
                        "usage event rejected by PostgreSQL, terminated: %s", exc, extra={"event_id": group[0][0]}
                    )
                    await _settle(msg.term())
                    return
                await self._store_rows_alone(msg, group)
                return
            except Exception as exc:  # anything else is the database being unavailable: keep the batch, retry
                self._metrics.failures.inc()
                if self._stopping.is_set():
                    log.warning("usage batch not stored at shutdown, returned to JetStream: %s", exc)
                    await _settle_all(msgs, Msg.nak)
                    return
                log.warning("usage batch insert failed, retrying in %.1fs: %r", delay, exc)
                await _settle_all(msgs, Msg.in_progress)
                await self._pause(delay)
                # in_progress must reach JetStream well within ack_wait, or the batch goes to another replica
                delay = min(delay * 2, self._config.retry_max_s, self._config.ack_wait_s / 3)
                continue
            self._metrics.insert_seconds.observe(time.perf_counter() - start)
            self._metrics.batches.inc()
            await self._stored(rows, new_ids)
            await _settle_all(msgs, Msg.ack)
            return

    async def _store_rows_alone(self, msg: Msg, rows: Sequence[Row]) -> None:
        """One batch message with a rejected row: store its rows one by one, drop the rejected, ack the message."""
        for row in rows:
            try:
                new_ids = await self._store.insert_batch([row])
            except _DATA_ERRORS as exc:
                self._metrics.invalid.inc()
                log.error("usage event rejected by PostgreSQL, dropped: %s", exc, extra={"event_id": row[0]})
                continue
            await self._stored([row], new_ids)
        await _settle(msg.ack())

    async def _stored(self, rows: Sequence[Row], new_ids: Mapping[str, bool]) -> None:
        """Count and observe the new rows; check the budgets of their keys that have one (``new_ids`` maps each new
        id to whether its key had a budget when stored: a batch without such a key costs no budget query)."""
        self._metrics.stored.inc(len(new_ids))
        self._metrics.duplicates.inc(len(rows) - len(new_ids))
        # an id repeated within the batch (a re-published message fetched with the first) was stored once
        pending = set(new_ids)
        new_rows = []
        for row in rows:
            if row[0] in pending:
                pending.discard(row[0])
                new_rows.append(row)
        self._metrics.genai.record(_observed(row) for row in new_rows)
        budgeted = {row[_KEY_ID] for row in new_rows if new_ids[row[0]]}
        if self._budgets is not None and budgeted:
            await self._budgets.check(budgeted)

    async def _pause(self, seconds: float) -> None:
        # sleep, but wake at once on stop() so shutdown never waits out a backoff
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def _unsubscribe(sub: JetStreamContext.PullSubscription) -> None:
    try:
        await sub.unsubscribe()
    except nats.errors.Error as exc:
        log.debug("usage unsubscribe failed: %s", exc)


def _observed(row: Row) -> Observed:
    return Observed(
        provider=row[_COL["provider"]],
        model=row[_COL["model"]],
        failed=row[_COL["status"]] >= 400 or bool(row[_COL["error_type"]]),
        latency_ms=row[_COL["latency_ms"]],
        ttft_ms=row[_COL["ttft_ms"]],
        input_tokens=row[_COL["input_tokens"]],
        output_tokens=row[_COL["output_tokens"]],
        cost_usd=float(row[_COL["cost_usd"]]),
    )


def _cost(book: PriceBook, event: usage_pb2.UsageEvent) -> Decimal:
    u = event.usage
    return book.cost(
        event.provider,
        event.model or event.requested_model,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_input_tokens=u.cached_input_tokens,
        cache_creation_tokens=u.cache_creation_tokens,
        reasoning_tokens=u.reasoning_tokens,
    )


def _decode(msg: Msg) -> list[usage_pb2.UsageEvent]:
    """The events of one message: a batch (header ``Omniroute-Encoding: batch``) or a single event."""
    if (msg.headers or {}).get(USAGE_ENCODING_HEADER) == USAGE_BATCH_ENCODING:
        return list(usage_pb2.UsageEventBatch.FromString(msg.data).events)
    return [usage_pb2.UsageEvent.FromString(msg.data)]


def _event_id(event: usage_pb2.UsageEvent, msg: Msg, index: int) -> str:
    if event.event_id:
        return event.event_id
    meta = msg.metadata
    if (msg.headers or {}).get(USAGE_ENCODING_HEADER) == USAGE_BATCH_ENCODING:
        return f"nats:{meta.stream}:{meta.sequence.stream}:{index}"
    header = (msg.headers or {}).get("Nats-Msg-Id", "")
    if header:
        return header
    return f"nats:{meta.stream}:{meta.sequence.stream}"


async def _settle_all(msgs: Sequence[Msg], how: Callable[[Msg], Awaitable[None]]) -> None:
    # one after the other: each only appends to the client's write buffer, and a task per message (gather) cost
    # more CPU than the rest of the batch's handling together
    for msg in msgs:
        await _settle(how(msg))


async def _settle(ack: Awaitable[None]) -> None:
    """Await one ack / nak / term / in-progress; a lost one only means a redelivery, which is idempotent."""
    try:
        await ack
    except nats.errors.Error as exc:
        log.debug("usage ack failed (message will be redelivered): %s", exc)
