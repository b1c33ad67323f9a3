"""``OPERATION_COUNT_TOKENS``: answered by the translator's offline tokenizer, never by a provider.

The model string is resolved exactly as for a chat request (prefix, alias, combo, catalog inference), so an unknown
or ambiguous model is the same 404/400; the first target's upstream model picks the tokenizer family. The reply
body, its shape and any error are the translator's, rendered in the client's format: this module knows no format.
No provider is called, so no attempt is metered.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from omniroute.v1 import common_pb2, executor_pb2, translator_pb2
from omniroute_core.catalog import Catalog
from omniroute_core.errors import hub_error
from omniroute_core.snapshot import ConfigSnapshot
from omniroute_executor.resolve import ResolveError
from omniroute_executor.routing import RoutingStats, build_plan
from omniroute_executor.translate import TranslatorClient

__all__ = ["count_tokens"]

ErrorReply = Callable[[common_pb2.RequestMeta, common_pb2.Error], Awaitable[executor_pb2.ExecuteReply]]


async def count_tokens(
    meta: common_pb2.RequestMeta,
    body: bytes,
    *,
    catalog: Catalog,
    snapshot: ConfigSnapshot,
    translator: TranslatorClient,
    error_reply: ErrorReply,
) -> executor_pb2.ExecuteReply:
    """The client-format count reply (200), or ``error_reply`` of the resolution or translator error."""
    try:
        # cooldowns and breakers do not matter for a count: every target stays in the plan
        plan = build_plan(
            meta.model, catalog, snapshot, stats=RoutingStats(), rng=random.Random(0), blocked_until=lambda _: 0
        )
    except ResolveError as exc:
        return await error_reply(meta, exc.error)
    if not plan.targets:
        return await error_reply(meta, hub_error(400, f"model {meta.model!r} resolves to no target"))
    counted = await translator.count_tokens(
        translator_pb2.CountTokensIn(source=meta.client_format, body=body, model=plan.targets[0].model)
    )
    if counted.HasField("error"):
        return await error_reply(meta, counted.error)
    return executor_pb2.ExecuteReply(
        status=200,
        content_type=counted.content_type,
        body=counted.body,
        headers={"x-omniroute-token-encoding": counted.encoding},
        usage=common_pb2.Usage(input_tokens=counted.input_tokens),
        provider=plan.targets[0].provider.id,
        model=plan.targets[0].model,
    )
