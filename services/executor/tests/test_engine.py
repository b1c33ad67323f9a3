"""The engine against a fake OpenAI upstream: exact upstream requests, relayed bytes, usage, errors."""

from __future__ import annotations

import asyncio

from omniroute.v1 import common_pb2, executor_pb2
from omniroute_core import jsonx
from omniroute_devservers.fake_openai import USAGE, Reply
from omniroute_devservers.servers import free_port
from omniroute_executor.engine import Engine

from .conftest import UPSTREAM_KEY, Rig


def request(body: bytes, *, model: str = "openai/gpt-4o", stream: bool = False) -> executor_pb2.ExecuteRequest:
    meta = common_pb2.RequestMeta(
        request_id="req-1",
        key_id="key-1",
        client_format=common_pb2.FORMAT_OPENAI_CHAT,
        operation=common_pb2.OPERATION_CHAT,
        model=model,
        stream=stream,
        endpoint="/v1/chat/completions",
    )
    return executor_pb2.ExecuteRequest(meta=meta, body=body)


BODY = b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi \\"model\\""}], "temperature": 0}'


async def collect(engine: Engine, req: executor_pb2.ExecuteRequest) -> list[executor_pb2.ExecuteChunk]:
    return [chunk async for chunk in engine.execute_stream(req)]


async def test_non_streaming_rewrites_only_the_model_and_relays_the_reply(rig: Rig) -> None:
    reply = await rig.engine.execute(request(BODY))
    assert reply.status == 200
    sent = rig.fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == BODY.replace(b'"openai/gpt-4o"', b'"gpt-4o"')
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.headers["X-Custom"] == "1"
    assert jsonx.loads(reply.body) == rig.fake.completion("gpt-4o")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 7)
    assert (reply.usage.cached_input_tokens, reply.usage.reasoning_tokens, reply.usage.total_tokens) == (3, 2, 18)
    assert (reply.provider, reply.model) == ("openai", "gpt-4o")


async def test_stream_asks_for_usage_and_hides_the_usage_event_from_a_client_that_did_not(rig: Rig) -> None:
    body = b'{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    chunks = await collect(rig.engine, request(body, stream=True))
    sent = rig.fake.requests[-1].json
    assert sent["stream_options"] == {"include_usage": True}
    assert chunks[0].status == 200 and chunks[0].content_type == "text/event-stream"
    data = b"".join(c.data for c in chunks)
    assert b'"usage"' not in data
    assert data.endswith(b"data: [DONE]\n\n")
    expected = b"".join(b"data: " + e + b"\n\n" for e in rig.fake.chunks("gpt-4o", include_usage=False))
    assert data == expected + b"data: [DONE]\n\n"


async def test_stream_keeps_the_usage_event_when_the_client_asked(rig: Rig) -> None:
    body = b'{"model":"openai/gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}'
    chunks = await collect(rig.engine, request(body, stream=True))
    assert rig.fake.requests[-1].body == body.replace(b'"openai/gpt-4o"', b'"gpt-4o"')
    data = b"".join(c.data for c in chunks)
    assert jsonx.dumps(USAGE) in data


async def test_stream_relays_the_first_bytes_before_the_upstream_finishes(rig: Rig) -> None:
    events = rig.fake.chunks("gpt-4o", include_usage=False)
    rig.fake.script.append(Reply(events=events, chunk_delay_s=0.2))
    stream = rig.engine.execute_stream(request(b'{"model":"openai/gpt-4o","stream":true}', stream=True))
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = await anext(stream)
    first_at = loop.time() - start
    rest = [c async for c in stream]
    total = loop.time() - start
    assert first.status == 200 and first.data.startswith(b"data: ")
    # the upstream spends len(events) * 0.2 s sending; the first chunk came long before that
    assert first_at < total / 2
    assert b"".join(c.data for c in rest).endswith(b"data: [DONE]\n\n")


async def test_stream_cut_before_done_ends_with_an_error_event(rig: Rig) -> None:
    rig.fake.script.append(Reply(events=rig.fake.chunks("gpt-4o", include_usage=False)[:2], terminal=False))
    chunks = await collect(rig.engine, request(b'{"model":"openai/gpt-4o","stream":true}', stream=True))
    assert chunks[0].status == 200
    last = chunks[-1].data
    assert last.startswith(b"data: ")
    assert jsonx.loads(last[6:])["error"]["type"] == "upstream_error"


async def test_upstream_error_status_is_relayed_with_retry_after(rig: Rig) -> None:
    err = {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}
    rig.fake.script.append(Reply(status=429, json=err, headers={"Retry-After": "7"}))
    reply = await rig.engine.execute(request(BODY))
    assert reply.status == 429
    assert jsonx.loads(reply.body) == err
    assert reply.headers["retry-after"] == "7"


async def test_stream_upstream_error_before_content_is_a_plain_error_reply(rig: Rig) -> None:
    rig.fake.script.append(Reply(status=500, raw=b"<html>oops</html>"))
    chunks = await collect(rig.engine, request(b'{"model":"openai/gpt-4o","stream":true}', stream=True))
    assert len(chunks) == 1 and chunks[0].status == 500
    assert chunks[0].content_type == "application/json"
    assert "HTTP 500" in jsonx.loads(chunks[0].data)["error"]["message"]


async def test_refused_connection_is_502(rig: Rig) -> None:
    port = free_port()
    rig.engine._snapshot = lambda: _with_base(rig, f"http://127.0.0.1:{port}/v1")
    reply = await rig.engine.execute(request(BODY))
    assert reply.status == 502
    assert jsonx.loads(reply.body)["error"]["type"] == "upstream_error"


async def test_silent_upstream_is_504(rig: Rig) -> None:
    rig.fake.script.append(Reply(hang=True))
    reply = await rig.engine.execute(request(BODY))
    assert reply.status == 504
    assert jsonx.loads(reply.body)["error"]["type"] == "timeout_error"


async def test_unknown_model_is_404_and_missing_connection_is_400(rig: Rig) -> None:
    reply = await rig.engine.execute(request(BODY, model="nope/some-model"))
    assert reply.status == 404
    assert jsonx.loads(reply.body)["error"]["code"] == "model_not_found"
    reply = await rig.engine.execute(request(BODY, model="groq/llama-3.3-70b-versatile"))
    assert reply.status == 400
    assert jsonx.loads(reply.body)["error"]["code"] == "provider_not_configured"


async def test_malformed_body_is_400(rig: Rig) -> None:
    reply = await rig.engine.execute(request(b"{nope"))
    assert reply.status == 400
    assert "not valid JSON" in jsonx.loads(reply.body)["error"]["message"]
    assert rig.fake.requests == []


def _with_base(rig: Rig, base_url: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from omniroute_core.snapshot import ConfigSnapshot

    conn = replace(rig.snapshot.connections[0], base_url=base_url)
    return ConfigSnapshot.build(2, (conn,), (), {})


async def test_ambiguous_bare_model_lists_the_candidates(rig: Rig) -> None:
    from omniroute_core.catalog import parse_catalog

    rig.engine._catalog = parse_catalog(
        {
            "providers": [
                {"id": "openai", "format": "openai", "baseUrl": "http://a", "models": ["shared"]},
                {"id": "other", "format": "openai", "baseUrl": "http://b", "models": ["shared"]},
            ]
        }
    )
    reply = await rig.engine.execute(request(BODY, model="shared"))
    assert reply.status == 400
    error = jsonx.loads(reply.body)["error"]
    assert error["code"] == "model_ambiguous"
    assert "openai/shared" in error["message"]
    assert "other/shared" in error["message"]
