"""Hub → Gemini / Ollama → hub round trips (hypothesis) for everything both formats can express, and the exact
usage conversions both ways."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omniroute_core import jsonx
from omniroute_translator.codecs import gemini, ollama
from omniroute_translator.codecs.gemini.response import usage_from_gemini, usage_to_gemini

_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
_name = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)
_args = st.dictionaries(_name, st.integers(-5, 5) | _text, max_size=3)


@st.composite
def _conversation(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A system prompt, then user/assistant turns; an assistant turn may call tools, answered right after."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_text)})
    n_calls = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(_text)})
        calls = draw(st.lists(st.tuples(_name, _args), max_size=2))
        if calls:
            tool_calls = [
                {
                    "id": f"call_{n_calls + k}",
                    "type": "function",
                    "function": {"name": n, "arguments": jsonx.dumps_str(a)},
                }
                for k, (n, a) in enumerate(calls)
            ]
            messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
            for call in tool_calls:
                result = jsonx.dumps_str({"r": draw(st.integers(-1000, 1000))})
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            n_calls += len(calls)
        else:
            messages.append({"role": "assistant", "content": draw(_text)})
    return messages


_sampling = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(1, 100),
        "seed": st.integers(0, 2**31),
        "max_tokens": st.integers(1, 10_000),
        "stop": st.lists(_text, min_size=1, max_size=3),
    },
)


@settings(max_examples=100)
@given(_conversation(), _sampling)
def test_gemini_round_trip(messages: list[dict[str, Any]], sampling: dict[str, Any]) -> None:
    hub = {"messages": messages, **sampling}
    assert gemini.CODEC.decode_request(gemini.CODEC.encode_request({"model": "m", **hub}, "m")) == hub


@settings(max_examples=100)
@given(_conversation(), _sampling, st.booleans())
def test_ollama_round_trip(messages: list[dict[str, Any]], sampling: dict[str, Any], stream: bool) -> None:
    hub = {"model": "m", "messages": messages, "stream": stream, **sampling}
    assert ollama.CODEC.decode_request(ollama.CODEC.encode_request(hub, "m")) == hub


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.data())
def test_gemini_usage_is_exact_both_ways(prompt: int, completion: int, data: st.DataObject) -> None:
    cached = data.draw(st.integers(0, prompt))
    reasoning = data.draw(st.integers(0, completion))
    hub: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        hub["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        hub["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    meta = usage_to_gemini(hub)
    assert meta is not None
    # Gemini counts thoughts apart from candidates; the hub counts reasoning inside completion
    assert meta["candidatesTokenCount"] + meta.get("thoughtsTokenCount", 0) == completion
    assert meta["promptTokenCount"] == prompt and meta.get("cachedContentTokenCount", 0) == cached
    assert usage_from_gemini(meta) == hub
