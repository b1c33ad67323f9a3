"""The hub accounting against numbers OpenAI's API itself reported (the cookbook "How to count tokens with
tiktoken", sections 6 and 7), and the Anthropic-specific parts (system, tools, images, documents)."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs import CODECS
from omniroute_translator.tokens import FAMILIES, Tokenizers, count_request, family_for

OPENAI = CODECS[common_pb2.FORMAT_OPENAI_CHAT]
ANTHROPIC = CODECS[common_pb2.FORMAT_ANTHROPIC_MESSAGES]

COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain "
        "English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased "
        "leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]
COOKBOOK_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def count_openai(tokenizers: Tokenizers, body: dict[str, Any]) -> int:
    hub = OPENAI.decode_request(jsonx.dumps(body))
    family = family_for(body["model"])
    return count_request(hub, family, lambda text: tokenizers.count(family.encoding, text))


def count_anthropic(tokenizers: Tokenizers, body: dict[str, Any]) -> int:
    hub = ANTHROPIC.decode_request(jsonx.dumps(body))
    family = family_for(body["model"])
    return count_request(hub, family, lambda text: tokenizers.count(family.encoding, text))


@pytest.mark.parametrize(
    ("model", "api_prompt_tokens"),
    [("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_messages_match_the_counts_openai_reported(tokenizers: Tokenizers, model: str, api_prompt_tokens: int) -> None:
    assert count_openai(tokenizers, {"model": model, "messages": COOKBOOK_MESSAGES}) == api_prompt_tokens


@pytest.mark.parametrize(
    ("model", "api_prompt_tokens"),
    [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)],
)
def test_tools_match_the_counts_openai_reported(tokenizers: Tokenizers, model: str, api_prompt_tokens: int) -> None:
    body = {"model": model, "messages": COOKBOOK_TOOL_MESSAGES, "tools": COOKBOOK_TOOLS}
    assert count_openai(tokenizers, body) == api_prompt_tokens


def test_anthropic_system_is_counted_as_a_system_message(tokenizers: Tokenizers) -> None:
    """The same conversation as Anthropic (top-level system) and as OpenAI (system message) counts the same."""
    system, question = COOKBOOK_TOOL_MESSAGES[0]["content"], COOKBOOK_TOOL_MESSAGES[1]["content"]
    as_anthropic = {"model": "gpt-4o", "system": system, "messages": [{"role": "user", "content": question}]}
    assert count_anthropic(tokenizers, as_anthropic) == count_openai(
        tokenizers, {"model": "gpt-4o", "messages": COOKBOOK_TOOL_MESSAGES}
    )
    without = {"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}
    # the system message costs its framing (3), its role ("system": 1) and its text
    assert count_anthropic(tokenizers, as_anthropic) - count_anthropic(tokenizers, without) == 3 + 1 + (
        tokenizers.count("o200k_base", system)
    )


def test_anthropic_tools_count_like_openai_functions(tokenizers: Tokenizers) -> None:
    function = COOKBOOK_TOOLS[0]["function"]
    tool = {"name": function["name"], "description": function["description"], "input_schema": function["parameters"]}
    system, question = COOKBOOK_TOOL_MESSAGES[0]["content"], COOKBOOK_TOOL_MESSAGES[1]["content"]
    body = {"model": "gpt-4o", "system": system, "messages": [{"role": "user", "content": question}], "tools": [tool]}
    assert count_anthropic(tokenizers, body) == 101


def test_images_cost_the_familys_flat_rate(tokenizers: Tokenizers) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    url_image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    text = {"type": "text", "text": "What is in these images?"}
    base = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [text]}]}
    two = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [image, url_image, text]}]}
    claude = FAMILIES["anthropic-claude"]
    assert count_anthropic(tokenizers, two) - count_anthropic(tokenizers, base) == 2 * claude.image_tokens
    gemini = {**two, "model": "gemini-2.5-flash"}
    assert count_anthropic(tokenizers, gemini) - count_anthropic(tokenizers, {**base, "model": "gemini-2.5-flash"}) == (
        2 * FAMILIES["google-gemini"].image_tokens
    )


def test_openai_low_detail_images_cost_less(tokenizers: Tokenizers) -> None:
    def body(detail: str) -> dict[str, Any]:
        part = {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": detail}}
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}

    assert count_openai(tokenizers, body("high")) - count_openai(tokenizers, body("low")) == 765 - 85


def test_tool_history_and_documents(tokenizers: Tokenizers) -> None:
    """Tool calls count their name and arguments, tool results their text, a PDF its flat rate; prior thinking
    is not counted."""
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "the user wants weather " * 50, "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            ],
        },
    ]
    got = count_anthropic(tokenizers, {"model": "gpt-4o", "messages": messages})
    enc = "o200k_base"

    def n(text: str) -> int:
        return tokenizers.count(enc, text)

    expected = (
        3  # reply priming
        + (3 + n("user") + n("weather in Paris?"))
        + (3 + n("assistant") + n("weather") + n('{"city":"Paris"}'))
        + (3 + n("tool") + n("18C and sunny"))
        + (3 + n("user") + FAMILIES["openai-o200k"].file_tokens)
    )
    assert got == expected


def test_nested_parameters_and_structured_output_are_counted(tokenizers: Tokenizers) -> None:
    flat = {"type": "object", "properties": {"where": {"type": "string"}}}
    nested = {
        "type": "object",
        "properties": {"where": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
        }

    assert count_openai(tokenizers, body(nested)) > count_openai(tokenizers, body(flat))
    plain = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    structured = {**plain, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}
    assert count_openai(tokenizers, structured) - count_openai(tokenizers, plain) == tokenizers.count(
        "o200k_base", jsonx.dumps_str(schema)
    )
