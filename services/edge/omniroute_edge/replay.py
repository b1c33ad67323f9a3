"""Idempotency and the caches around one relayed request.

:func:`serve` decides, before the executor is called, whether a stored reply answers the request (a duplicate
within the idempotency window, an exact-tier hit, or, after an exact miss, a semantic-tier hit), and otherwise
runs the request while recording what it sends so the reply can be stored for the next duplicate or hit.
Requests that are not cache-eligible never reach either tier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core.snapshot import CACHE_POLICIES, ApiKey, ConfigSnapshot
from omniroute_edge.cache import ExactCache, eligible
from omniroute_edge.idempotency import Claim, Idempotency
from omniroute_edge.replies import Recorder, StoredReply
from omniroute_edge.routes import Route
from omniroute_edge.semantic import Probe, SemanticCache

__all__ = ["ReplayPolicy", "RequestFacts", "cache_policy", "serve"]

Send = Callable[[dict[str, Any]], Any]
Header = tuple[bytes, bytes]
Run = Callable[[Send, list[Header]], Awaitable[int]]

IDEMPOTENT = (b"x-omniroute-idempotent", b"true")


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    idempotency: Idempotency | None
    cache: ExactCache | None
    cache_policy: str  # the default when neither the key nor the settings name one
    max_stored_bytes: int
    semantic: SemanticCache | None = None  # consulted only after an exact-tier miss


@dataclass(frozen=True, slots=True)
class RequestFacts:
    scope: str  # API key id, or the client address for anonymous callers
    path: str
    doc: Any
    stream: bool
    idempotency_token: str
    no_cache: bool
    cache_policy: str = ""  # the key's or the gateway setting's; empty: ReplayPolicy.cache_policy


async def serve(policy: ReplayPolicy, route: Route, facts: RequestFacts, send: Send, rid: str, run: Run) -> int:
    """Answer from a stored reply when one applies, else ``run`` the request (recording it when useful)."""
    rid_header = (b"x-request-id", rid.encode())
    claim: Claim | None = None
    idem = policy.idempotency if facts.idempotency_token else None
    if idem is not None:
        claim = await idem.claim(idem.key_for(facts.scope, facts.path, facts.idempotency_token))
        if not claim.owner:
            stored = await idem.wait(claim)
            if stored is not None:
                await stored.send(send, [rid_header, IDEMPOTENT])
                return stored.status
            claim = await idem.claim(claim.key)  # the first one vanished: run, owning the key if still free
    try:
        cache_key = _cache_key(policy, route, facts)
        probe: Probe | None = None
        if cache_key is not None and policy.cache is not None:
            semantic = policy.semantic if route.operation == common_pb2.OPERATION_CHAT else None
            hit = await policy.cache.get(cache_key, count=False)
            if hit is None and semantic is not None:
                probe = await semantic.lookup(route.format, facts.scope, facts.path, facts.doc, rid)
                hit = probe.hit if probe is not None else None
            policy.cache.count(hit=hit is not None)
            if hit is not None:
                marker = [] if facts.stream else [(b"x-omniroute-cache", b"HIT")]
                await hit.send(send, [rid_header, *marker])
                await _settle(idem, claim, hit)
                return hit.status
        record = cache_key is not None or (claim is not None and claim.owner)
        recorder = Recorder(send, policy.max_stored_bytes) if record else None
        extra = [(b"x-omniroute-cache", b"MISS")] if cache_key is not None and not facts.stream else []
        status = await run(recorder or send, extra)
        reply = recorder.reply() if recorder else None
        if cache_key is not None and reply is not None and policy.cache is not None:
            await policy.cache.put(cache_key, reply)
            if probe is not None and reply.status == 200 and policy.semantic is not None:
                policy.semantic.remember(probe, cache_key)
        await _settle(idem, claim, reply)
        claim = None
        return status
    finally:
        if idem is not None and claim is not None and claim.owner:
            with contextlib.suppress(Exception):
                await idem.release(claim)


def cache_policy(key: ApiKey | None, snapshot: ConfigSnapshot) -> str:
    """The cache policy of a request: its key's own, else the gateway's ``cache`` setting, else "" (the edge's
    configured default applies)."""
    if key is not None and key.cache_policy:
        return key.cache_policy
    setting = snapshot.settings.get("cache")
    policy = setting.get("policy") if isinstance(setting, dict) else None
    return policy if isinstance(policy, str) and policy in CACHE_POLICIES else ""


def _cache_key(policy: ReplayPolicy, route: Route, facts: RequestFacts) -> str | None:
    if policy.cache is None or not route.cacheable or facts.no_cache or not isinstance(facts.doc, dict):
        return None
    if not eligible(facts.doc, route.temperature_path, facts.cache_policy or policy.cache_policy):
        return None
    return policy.cache.key_for(facts.scope, facts.path, facts.doc)


async def _settle(idem: Idempotency | None, claim: Claim | None, reply: StoredReply | None) -> None:
    if idem is not None and claim is not None and claim.owner:
        await idem.complete(claim, reply)
