"""Hub → Responses → hub round trips (hypothesis) for everything the Responses API can express: requests,
responses and streams (split at random byte boundaries). What does not survive is in the README's
dropped-on-purpose table and is not generated here (assistant text parts become one string, reasoning is not sent
to a provider, ``strict`` is always written)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute_core import jsonx
from omniroute_translator.codecs.base import Context, HubChunk
from omniroute_translator.codecs.hub import usage_to_proto
from omniroute_translator.codecs.openai_responses import CODEC

_TEXT = st.text(max_size=20)
_SOME_TEXT = st.text(min_size=1, max_size=20)
_WORD = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
_ARGS = st.dictionaries(_WORD, st.integers(-5, 5) | _TEXT, max_size=3).map(lambda d: jsonx.dumps(d).decode())
_CTX = Context(model="gpt-x", request_id="r", created_unix=1)
_PART = st.builds(lambda t: {"type": "text", "text": t}, _TEXT) | st.builds(
    lambda u, d: {"type": "image_url", "image_url": {"url": u, "detail": d}},
    _WORD.map(lambda w: f"https://example.com/{w}.png"),
    st.sampled_from(["auto", "low", "high"]),
)


@st.composite
def _turn(draw: st.DrawFn, turn: int) -> list[dict[str, Any]]:
    """A user message, then an assistant answer (text and/or tool calls) and the tool results."""
    user: dict[str, Any] = {"role": "user", "content": draw(_SOME_TEXT | st.lists(_PART, min_size=1, max_size=3))}
    names = draw(st.lists(_WORD, max_size=2))
    calls = [
        {"id": f"call_{turn}_{i}", "type": "function", "function": {"name": name, "arguments": draw(_ARGS)}}
        for i, name in enumerate(names)
    ]
    assistant: dict[str, Any] = {"role": "assistant", "content": draw(_SOME_TEXT) if not calls else draw(st.none())}
    if calls:
        assistant["tool_calls"] = calls
    results = [{"role": "tool", "tool_call_id": c["id"], "content": draw(_TEXT)} for c in calls]
    return [user, assistant, *results]


@st.composite
def hub_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_SOME_TEXT)})
    for turn in range(draw(st.integers(1, 3))):
        messages += draw(_turn(turn))
    if draw(st.booleans()):
        messages.append({"role": "developer", "content": draw(_SOME_TEXT)})
    hub: dict[str, Any] = {"model": "gpt-x", "messages": messages}
    optional = {
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 100000),
        "user": _WORD,
        "stream": st.booleans(),
        "metadata": st.dictionaries(_WORD, _TEXT, max_size=2),
        "parallel_tool_calls": st.booleans(),
        "reasoning_effort": st.sampled_from(["minimal", "low", "medium", "high"]),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}])
        | st.builds(
            lambda n, strict: {
                "type": "json_schema",
                "json_schema": {"name": n, "schema": {"type": "object"}, "strict": strict},
            },
            _WORD,
            st.booleans(),
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            hub[key] = draw(strategy)
    if draw(st.booleans()):
        hub["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "parameters": {"type": "object", "properties": {}},
                    "strict": draw(st.booleans()),
                },
            }
            for name in draw(st.lists(_WORD, min_size=1, max_size=3, unique=True))
        ]
        choice = draw(st.sampled_from(["auto", "required", "none", "function"]))
        name = hub["tools"][0]["function"]["name"]
        hub["tool_choice"] = {"type": "function", "function": {"name": name}} if choice == "function" else choice
    return hub


@settings(max_examples=300, deadline=None)
@given(hub_requests())
def test_request_round_trip(hub: dict[str, Any]) -> None:
    assert CODEC.decode_request(CODEC.encode_request(hub, "gpt-x")) == hub


_USAGE = st.builds(
    lambda fresh, cached, out, reasoning: {
        "prompt_tokens": fresh + cached,
        "completion_tokens": out + reasoning,
        "total_tokens": fresh + cached + out + reasoning,
        **({"prompt_tokens_details": {"cached_tokens": cached}} if cached else {}),
        **({"completion_tokens_details": {"reasoning_tokens": reasoning}} if reasoning else {}),
    },
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


@settings(max_examples=200, deadline=None)
@given(_turn(0), _SOME_TEXT | st.none(), st.sampled_from(["stop", "length", "content_filter"]), _USAGE)
def test_response_round_trip(
    turn: list[dict[str, Any]], reasoning: str | None, finish: str, usage: dict[str, Any]
) -> None:
    message = turn[1]
    if reasoning:
        message["reasoning_content"] = reasoning
    finish = "tool_calls" if "tool_calls" in message else finish
    hub = {
        "id": "resp_r",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
    decoded = CODEC.decode_response(CODEC.encode_response(hub, _CTX))
    assert decoded.hub == hub
    assert decoded.usage == usage_to_proto(usage)


def _split(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=3)))
    return [text[a:b] for a, b in itertools.pairwise([0, *cuts, len(text)]) if text[a:b]]


@st.composite
def hub_streams(draw: st.DrawFn) -> tuple[list[HubChunk], dict[str, Any]]:
    """Hub chunks of one answer (reasoning, text, refusal, tool calls, finish, usage) and what they add up to."""
    reasoning, text, refusal = draw(_TEXT), draw(_TEXT), draw(_TEXT)
    calls = [(f"call_{i}", draw(_WORD), draw(_ARGS)) for i in range(draw(st.integers(0, 2)))]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning_content": piece} for piece in _split(draw, reasoning)]
    deltas += [{"content": piece} for piece in _split(draw, text)]
    deltas += [{"refusal": piece} for piece in _split(draw, refusal)]
    for i, (call_id, name, args) in enumerate(calls):
        head = {"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        deltas.append({"tool_calls": [head]})
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": p}}]} for p in _split(draw, args)]
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length", "content_filter"]))
    usage = draw(_USAGE)
    chunks: list[HubChunk] = [{"id": "c", "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({"id": "c", "choices": [], "usage": usage})
    expected = {
        "reasoning": reasoning,
        "text": text,
        "refusal": refusal,
        "calls": calls,
        "finish": finish,
        "usage": usage,
    }
    return chunks, expected


@settings(max_examples=200, deadline=None)
@given(hub_streams(), st.data())
def test_stream_round_trip(stream: tuple[list[HubChunk], dict[str, Any]], data: st.DataObject) -> None:
    chunks, expected = stream
    encoder = CODEC.stream_encoder(_CTX)
    body = b"".join(encoder.encode(c) for c in chunks) + encoder.finish(usage_to_proto(expected["usage"]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    decoder = CODEC.stream_decoder()
    out = [c for a, b in itertools.pairwise([0, *cuts, len(body)]) for c in decoder.feed(body[a:b])]
    assert decoder.complete
    deltas = [ch["delta"] for c in out for ch in c["choices"]]
    for key, field in (("reasoning", "reasoning_content"), ("text", "content"), ("refusal", "refusal")):
        assert "".join(d.get(field, "") for d in deltas) == expected[key]
    calls: dict[int, list[str]] = {}
    for d in deltas:
        for call in d.get("tool_calls", []):
            entry = calls.setdefault(call["index"], [call.get("id", ""), call["function"].get("name", ""), ""])
            entry[2] += call["function"].get("arguments", "")
    assert [tuple(calls[i]) for i in sorted(calls)] == expected["calls"]
    assert [ch["finish_reason"] for c in out for ch in c["choices"] if ch["finish_reason"]] == [expected["finish"]]
    assert [c["usage"] for c in out if "usage" in c] == [expected["usage"]]
