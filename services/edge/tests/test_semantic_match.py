"""What the semantic tier embeds (the last user turn, per format) and the lexical condition of a hit."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.v1 import common_pb2
from omniroute_edge.semantic import TURNS, same_question, signature, split_last_turn

OPENAI = TURNS[common_pb2.FORMAT_OPENAI_CHAT]
ANTHROPIC = TURNS[common_pb2.FORMAT_ANTHROPIC_MESSAGES]
RESPONSES = TURNS[common_pb2.FORMAT_OPENAI_RESPONSES]
GEMINI = TURNS[common_pb2.FORMAT_GEMINI]
OLLAMA = TURNS[common_pb2.FORMAT_OLLAMA_CHAT]


def test_the_last_user_turn_is_embedded_and_everything_else_is_kept() -> None:
    doc = {
        "model": "m",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "DNS?"}]},
        ],
    }
    split = split_last_turn(doc, OPENAI)
    assert split is not None
    messages: list[Any] = doc["messages"]  # type: ignore[assignment]
    assert split == ("what is\nDNS?", {**doc, "messages": messages[:3]})


@pytest.mark.parametrize(
    ("shape", "doc", "text"),
    [
        (ANTHROPIC, {"system": "s", "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}]}, "q"),
        (RESPONSES, {"instructions": "s", "input": "q"}, "q"),
        (RESPONSES, {"input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}]}]}, "q"),
        (RESPONSES, {"input": [{"type": "message", "role": "user", "content": "q"}]}, "q"),
        (GEMINI, {"contents": [{"parts": [{"text": "q"}]}]}, "q"),
        (GEMINI, {"contents": [{"role": "user", "parts": [{"text": "q"}]}], "systemInstruction": {}}, "q"),
        (OLLAMA, {"messages": [{"role": "user", "content": "q"}]}, "q"),
    ],
)
def test_every_format_gives_its_last_user_turn(shape: Any, doc: dict[str, Any], text: str) -> None:
    split = split_last_turn(doc, shape)
    assert split is not None and split[0] == text
    assert "q" not in repr(split[1].get(shape.turns, ""))


@pytest.mark.parametrize(
    ("shape", "doc"),
    [
        (OPENAI, {"messages": []}),
        (OPENAI, {"messages": "hi"}),
        (OPENAI, {}),
        (OPENAI, {"messages": [{"role": "assistant", "content": "prefill"}]}),
        (OPENAI, {"messages": [{"role": "tool", "tool_call_id": "1", "content": "42"}]}),
        (OPENAI, {"messages": [{"role": "user", "content": "  "}]}),
        (OPENAI, {"messages": [{"role": "user", "name": "bob", "content": "hi"}]}),
        (OPENAI, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
        (OPENAI, {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]}),
        (ANTHROPIC, {"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {}}]}]}),
        (ANTHROPIC, {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1"}]}]}),
        (RESPONSES, {"input": [{"type": "function_call_output", "call_id": "1", "output": "42"}]}),
        (RESPONSES, {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
        (GEMINI, {"contents": [{"role": "model", "parts": [{"text": "q"}]}]}),
        (GEMINI, {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}]}),
        (OLLAMA, {"messages": [{"role": "user", "content": "what is this?", "images": ["..."]}]}),
    ],
)
def test_a_last_turn_that_is_not_plain_user_text_is_left_to_the_exact_tier(shape: Any, doc: dict[str, Any]) -> None:
    assert split_last_turn(doc, shape) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reverse a list in Python?", "how can I reverse a list in python"),
        ("What's the capital of France?", "What is the capital of France"),
        ("Give me three tips for better sleep.", "Give me 3 tips for better sleep."),
        ("How do vaccines work?", "How does a vaccine work?"),
        ("Can you explain how DNS works?", "Explain how DNS works."),
        ("What is the main ingredient of guacamole?", "What\u2019s the main ingredient in guacamole?"),
        ("Why don't cats like water?", "why don\u2019t cats like water"),
    ],
)
def test_same_question_up_to_form(a: str, b: str) -> None:
    assert same_question(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 2 + 2?", "What is 2 + 3?"),
        ("What is 1,000 times 3?", "What is 1,000,000 times 3?"),
        ("Round 2.45 to one decimal place.", "Round 2.55 to one decimal place."),
        ("Why is my code working?", "Why is my code not working?"),
        ("Why do cats like water?", "Why don't cats like water?"),
        ("Which animals can swim?", "Which animals cannot swim?"),
        ("Is it safe to drink?", "Is it unsafe to drink?"),
        ("Convert a string to an integer.", "Convert an integer to a string."),
        ("Does smoking cause cancer?", "Does cancer cause smoking?"),
        ("Find flights to Paris.", "Find flights from Paris."),
        ("What is my IP address?", "What is your IP address?"),
        ("Who is the president of France?", "Who was the president of France?"),
        ("Can dogs eat chocolate?", "Do dogs eat chocolate?"),
        ("What is the capital of France?", "What is the capital of Germany?"),
        ("Write a story.", "Write a sad story."),
    ],
)
def test_different_questions_have_different_signatures(a: str, b: str) -> None:
    assert not same_question(a, b)


def test_a_signature_without_words_is_empty() -> None:
    assert signature("?!") == ()
    assert signature("the") == ()
