"""``/api/settings/system-prompt`` and ``/api/settings/thinking-budget``: applied by the executor to every request.

Both live in the ``settings`` table and so travel in the config snapshot; their meaning is documented once, in
:mod:`omniroute_core.request_settings`. ``GET`` shows the current values (defaults filled in); ``PUT`` merges the
given fields into them and answers with the result.

- system prompt: ``{"enabled": bool, "prefixPrompt": str, "suffixPrompt": str}``; ``"prompt"`` (OmniRoute's legacy
  single prompt) sets ``suffixPrompt``. Each prompt is at most 100,000 characters.
- thinking budget: ``{"mode": "passthrough" | "auto" | "custom" | "adaptive", "customBudget": 0..131072,
  "effortLevel": "none" | "low" | "medium" | "high"}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from omniroute_core.request_settings import (
    MAX_THINKING_BUDGET,
    SYSTEM_PROMPT_KEY,
    THINKING_BUDGET_KEY,
    SystemPrompt,
    ThinkingBudget,
)
from omniroute_dashboard.auth import require_admin
from omniroute_dashboard.context import ContextDep, config_change
from omniroute_dashboard.routing_store import Conn
from omniroute_dashboard.web import json_response, parse_body

__all__ = ["system_prompt_router", "thinking_budget_router"]

system_prompt_router = APIRouter(prefix="/api/settings/system-prompt", dependencies=[Depends(require_admin)])
thinking_budget_router = APIRouter(prefix="/api/settings/thinking-budget", dependencies=[Depends(require_admin)])

Prompt = Annotated[StrictStr, Field(max_length=100_000)]


class _SystemPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    prefixPrompt: Prompt | None = None
    suffixPrompt: Prompt | None = None
    prompt: Prompt | None = None


class _ThinkingBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["passthrough", "auto", "custom", "adaptive"] | None = None
    customBudget: Annotated[StrictInt, Field(ge=0, le=MAX_THINKING_BUDGET)] | None = None
    effortLevel: Literal["none", "low", "medium", "high"] | None = None


async def _stored(conn: Conn, key: str, *, lock: bool = False) -> Any:
    sql = (
        "SELECT value FROM settings WHERE key = $1 FOR UPDATE" if lock else "SELECT value FROM settings WHERE key = $1"
    )
    return await conn.fetchval(sql, key)


async def _save(conn: Conn, key: str, value: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        key,
        value,
    )


@system_prompt_router.get("")
async def get_system_prompt(ctx: ContextDep) -> Response:
    async with ctx.pool.acquire() as conn:
        return json_response(SystemPrompt.parse(await _stored(conn, SYSTEM_PROMPT_KEY)).to_api())


@system_prompt_router.put("")
async def put_system_prompt(request: Request, ctx: ContextDep) -> Response:
    """Merge the given fields; 400 for unknown fields or wrong types."""
    body = await parse_body(request, _SystemPrompt)
    given = body.model_dump(exclude_none=True)
    if "prompt" in given:
        given.setdefault("suffixPrompt", given.pop("prompt"))
        given.pop("prompt", None)
    async with config_change(ctx) as conn:
        current = SystemPrompt.parse(await _stored(conn, SYSTEM_PROMPT_KEY, lock=True)).to_api()
        updated = SystemPrompt.parse({**current, **given}).to_api()
        await _save(conn, SYSTEM_PROMPT_KEY, updated)
    return json_response(updated)


@thinking_budget_router.get("")
async def get_thinking_budget(ctx: ContextDep) -> Response:
    async with ctx.pool.acquire() as conn:
        return json_response(ThinkingBudget.parse(await _stored(conn, THINKING_BUDGET_KEY)).to_api())


@thinking_budget_router.put("")
async def put_thinking_budget(request: Request, ctx: ContextDep) -> Response:
    """Merge the given fields; 400 for an unknown mode or effort level, or a budget out of range."""
    body = await parse_body(request, _ThinkingBudget)
    async with config_change(ctx) as conn:
        current = ThinkingBudget.parse(await _stored(conn, THINKING_BUDGET_KEY, lock=True)).to_api()
        updated = ThinkingBudget.parse({**current, **body.model_dump(exclude_none=True)}).to_api()
        await _save(conn, THINKING_BUDGET_KEY, updated)
    return json_response(updated)
