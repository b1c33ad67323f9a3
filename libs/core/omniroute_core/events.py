"""NATS JetStream names and setup shared by producers and consumers.

- Usage events: stream ``OMNIROUTE_USAGE`` on subjects ``omniroute.usage.>``; every message carries
  ``Nats-Msg-Id`` = event id, so a producer's retry inside the duplicate window is stored once.
- Configuration: the KV bucket ``omniroute_config``, key ``snapshot``. Each put is the announcement of a new
  config version; data-plane services watch the key and swap in the new snapshot.
- Budget state: core NATS subject ``omniroute.budget.state`` (best effort, at most once), JSON
  ``{"keyId", "state": "exceeded" | "updated"}``: the usage service announces a key that stored spend at or past
  its budget, or whose budget changed, so every edge drops its cached budget answer for that key at once.
"""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

__all__ = [
    "BUDGET_STATE_SUBJECT",
    "CONFIG_BUCKET",
    "CONFIG_KEY",
    "USAGE_BATCH_ENCODING",
    "USAGE_ENCODING_HEADER",
    "USAGE_STREAM",
    "USAGE_SUBJECT_PREFIX",
    "config_bucket",
    "connect",
    "ensure_usage_stream",
]

log = logging.getLogger(__name__)

USAGE_STREAM = "OMNIROUTE_USAGE"
USAGE_SUBJECT_PREFIX = "omniroute.usage"
USAGE_DUPLICATE_WINDOW_S = 120.0
# header marking a message whose body is a UsageEventBatch (absent: one UsageEvent)
USAGE_ENCODING_HEADER = "Omniroute-Encoding"
USAGE_BATCH_ENCODING = "batch"
BUDGET_STATE_SUBJECT = "omniroute.budget.state"
CONFIG_BUCKET = "omniroute_config"
CONFIG_KEY = "snapshot"


async def connect(url: str, name: str) -> NATS:
    """Connect with unlimited reconnects, so a NATS restart is ridden out rather than fatal."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    return await nats.connect(
        servers=[url],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        error_cb=on_error,
    )


async def ensure_usage_stream(js: JetStreamContext) -> None:
    """Create the usage stream if missing (idempotent; every producer and the consumer call it)."""
    config = StreamConfig(
        name=USAGE_STREAM,
        subjects=[f"{USAGE_SUBJECT_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * 24 * 3600,
        duplicate_window=USAGE_DUPLICATE_WINDOW_S,
        discard=DiscardPolicy.OLD,
    )
    try:
        await js.stream_info(USAGE_STREAM)
    except NotFoundError:
        await js.add_stream(config)


async def config_bucket(js: JetStreamContext) -> KeyValue:
    """The config KV bucket, created on first use (history 1: only the newest snapshot matters)."""
    try:
        return await js.key_value(CONFIG_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=CONFIG_BUCKET, history=1, storage=StorageType.FILE, max_value_size=-1)
        )
