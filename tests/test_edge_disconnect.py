"""A client that goes away cancels the executor call and so the upstream request, for replies and for streams.

The executor meters an attempt whose caller left as ``client_gone`` (an attempt that ran to its end would be
metered with the provider's status), so the stored usage row shows that the cancellation went all the way.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from omniroute_devservers.control import config_synced, make_key
from omniroute_devservers.fake_openai import FakeOpenAI, Reply
from omniroute_devservers.suite import Suite

pytestmark = pytest.mark.e2e


async def usage_row(suite: Suite, request_id: str, timeout: float = 15) -> asyncpg.Record:
    conn = await asyncpg.connect(suite.database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = await conn.fetchrow("SELECT * FROM usage_events WHERE request_id = $1", request_id)
            if row is not None:
                return row
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"no usage row for request {request_id}")


@pytest.fixture(scope="module")
async def key(admin: httpx.AsyncClient, suite: Suite, fake_openai: FakeOpenAI) -> str:
    _, key = await make_key(admin)
    await config_synced(admin, [suite.edge_url])
    return key


async def test_leaving_mid_stream_cancels_the_upstream(suite: Suite, fake_openai: FakeOpenAI, key: str) -> None:
    events = fake_openai.chunks("gpt-4o", include_usage=True)
    # the whole stream would take len(events) * 2 s; the client leaves after the first bytes
    fake_openai.script.append(Reply(events=events, chunk_delay_s=2.0))
    rid = uuid.uuid4().hex
    body = {"model": "openai/gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": rid}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", suite.edge_url + "/v1/chat/completions", json=body, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        first = await anext(resp.aiter_raw())
        assert first.startswith(b"data: ")
    row = await usage_row(suite, rid)
    assert (row["error_type"], row["stream"]) == ("client_gone", True)


async def test_leaving_before_the_reply_cancels_the_upstream(suite: Suite, fake_openai: FakeOpenAI, key: str) -> None:
    fake_openai.script.append(Reply(json=fake_openai.completion("gpt-4o"), delay_s=30))
    rid = uuid.uuid4().hex
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": rid}
    with pytest.raises(httpx.ReadTimeout):
        async with httpx.AsyncClient(timeout=0.5) as http:
            await http.post(suite.edge_url + "/v1/chat/completions", json=body, headers=headers)
    row = await usage_row(suite, rid)
    assert (row["error_type"], row["stream"]) == ("client_gone", False)
