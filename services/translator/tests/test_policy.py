"""Gateway-wide request settings (``TranslateRequestIn.policy``): the system prompt and the thinking budget
written once in the hub, rendered by every provider format; the same-format path re-encodes only when the policy
changed the request."""

from __future__ import annotations

from typing import Any

import pytest

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_core.formats import FORMAT_BY_NAME
from omniroute_translator import pipeline
from omniroute_translator.codecs import CODECS
from omniroute_translator.policy import apply_policy, policy_active

OPENAI = common_pb2.FORMAT_OPENAI_CHAT
ANTHROPIC = common_pb2.FORMAT_ANTHROPIC_MESSAGES
BODY = (
    b'{"model":"m","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"hi"}],'
    b'"max_tokens":50000}'
)
BOTH = translator_pb2.RequestPolicy(
    system_prefix="P", system_suffix="S", thinking_mode="custom", thinking_budget=4096, model_reasons=True
)


def translate(body: bytes, target: str, policy: translator_pb2.RequestPolicy, source: int = OPENAI) -> Any:
    req = translator_pb2.TranslateRequestIn(
        source=source,  # type: ignore[arg-type]
        target=FORMAT_BY_NAME[target],
        body=body,
        model="up",
        policy=policy,
    )
    out = pipeline.translate_request(CODECS, req)
    assert not out.HasField("error"), out.error.message
    return jsonx.loads(out.body)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "openai",
            {
                "model": "up",
                "messages": [{"role": "system", "content": "P\n\nBe terse.\n\nS"}, {"role": "user", "content": "hi"}],
                "max_tokens": 50000,
                "reasoning_effort": "high",
            },
        ),
        (
            "openai-responses",
            {
                "model": "up",
                "instructions": "P\n\nBe terse.\n\nS",
                "input": [{"type": "message", "role": "user", "content": "hi"}],
                "max_output_tokens": 50000,
                "reasoning": {"effort": "high"},
                "store": False,
            },
        ),
        (
            "anthropic",
            {
                "model": "up",
                "max_tokens": 50000,
                "messages": [{"role": "user", "content": "hi"}],
                "system": "P\n\nBe terse.\n\nS",
                "thinking": {"type": "enabled", "budget_tokens": 4096},
            },
        ),
        (
            "gemini",
            {
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "systemInstruction": {"parts": [{"text": "P\n\nBe terse.\n\nS"}]},
                "generationConfig": {
                    "maxOutputTokens": 50000,
                    "thinkingConfig": {"thinkingBudget": 4096, "includeThoughts": True},
                },
            },
        ),
        (
            "ollama",
            {
                "model": "up",
                "messages": [{"role": "system", "content": "P\n\nBe terse.\n\nS"}, {"role": "user", "content": "hi"}],
                "options": {"num_predict": 50000},
                "stream": False,
                "think": True,
            },
        ),
    ],
)
def test_every_provider_format_gets_prompt_and_budget_in_its_own_words(target: str, expected: Any) -> None:
    assert translate(BODY, target, BOTH) == expected


def test_same_format_is_re_encoded_only_when_the_policy_changes_something() -> None:
    same = pipeline.translate_request(
        CODECS,
        translator_pb2.TranslateRequestIn(
            source=OPENAI,
            target=OPENAI,
            body=BODY,
            model="up",
            # a budget for a model not known to reason, on a request that does not ask: nothing to change
            policy=translator_pb2.RequestPolicy(thinking_mode="custom", thinking_budget=2048),
        ),
    )
    assert same.body == BODY.replace(b'"m"', b'"up"')  # still the byte patch
    anthropic = (
        b'{"model":"m","max_tokens":50000,"system":[{"type":"text","text":"Be terse.",'
        b'"cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}],'
        b'"thinking":{"type":"enabled","budget_tokens":2000}}'
    )
    assert translate(anthropic, "anthropic", BOTH, source=ANTHROPIC) == {
        "model": "up",
        "max_tokens": 50000,
        "messages": [{"role": "user", "content": "hi"}],
        "system": [
            {"type": "text", "text": "P"},
            {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "S"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 4096},
    }


def hub(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def policy(**fields: Any) -> translator_pb2.RequestPolicy:
    return translator_pb2.RequestPolicy(**fields)


@pytest.mark.parametrize(
    ("request_fields", "settings", "changed", "expected"),
    [
        # system prompt: none in the request → one system message first; several → prefix first, suffix last
        ({}, policy(system_prefix="P"), True, {"messages": [{"role": "system", "content": "P"}, "user"]}),
        ({}, policy(system_prefix="P", system_suffix="S"), True,
         {"messages": [{"role": "system", "content": "P\n\nS"}, "user"]}),
        (
            {"messages": [
                {"role": "developer", "content": [{"type": "text", "text": "A"}]},
                {"role": "system", "content": "B"},
            ]},
            policy(system_prefix="P", system_suffix="S"),
            True,
            {
                "messages": [
                    {"role": "developer", "content": [{"type": "text", "text": "P"}, {"type": "text", "text": "A"}]},
                    {"role": "system", "content": "B\n\nS"},
                ]
            },
        ),
        ({"messages": [{"role": "system", "content": None}]}, policy(system_suffix="S"), True,
         {"messages": [{"role": "system", "content": "S"}]}),
        # thinking
        ({"reasoning_effort": "low"}, policy(thinking_mode="auto"), True, {"reasoning_effort": None, "thinking": None}),
        ({}, policy(thinking_mode="auto"), False, {}),
        ({"reasoning_effort": "low"}, policy(thinking_mode="custom", thinking_budget=3000), True,
         {"reasoning_effort": None, "thinking": {"type": "enabled", "budget_tokens": 3000}}),
        ({}, policy(thinking_mode="custom", thinking_budget=3000), False, {"thinking": None}),
        ({}, policy(thinking_mode="custom", thinking_budget=3000, model_reasons=True), True,
         {"thinking": {"type": "enabled", "budget_tokens": 3000}}),
        # the client turned reasoning off: kept off even for a reasoning model
        ({"thinking": {"type": "disabled"}}, policy(thinking_mode="custom", thinking_budget=3000, model_reasons=True),
         False, {"thinking": {"type": "disabled"}}),
        ({"thinking": {"type": "enabled"}}, policy(thinking_mode="custom", thinking_budget=0), True,
         {"thinking": {"type": "disabled"}}),
        ({"reasoning_effort": "high"}, policy(thinking_mode="adaptive", thinking_budget=1000), True,
         {"thinking": {"type": "enabled", "budget_tokens": 1000}}),
        ({"reasoning_effort": "high", "tools": [{}] * 4, "messages": [{"role": "user", "content": "x" * 2001}] * 11},
         policy(thinking_mode="adaptive", thinking_budget=1000), True,
         {"thinking": {"type": "enabled", "budget_tokens": 2300}}),
        ({"reasoning_effort": "high"}, policy(thinking_mode="adaptive", thinking_budget=131_072), True,
         {"thinking": {"type": "enabled", "budget_tokens": 131_072}}),
        ({"reasoning_effort": "high"}, policy(thinking_mode="passthrough"), False, {"reasoning_effort": "high"}),
    ],
)  # fmt: skip
def test_apply_policy(
    request_fields: dict[str, Any], settings: translator_pb2.RequestPolicy, changed: bool, expected: dict[str, Any]
) -> None:
    doc = hub(**request_fields)
    original_messages = list(doc["messages"])
    assert apply_policy(doc, settings) is changed
    for key, value in expected.items():
        want = [original_messages[-1] if v == "user" else v for v in value] if key == "messages" else value
        assert doc.get(key) == want, key


def test_policy_active() -> None:
    assert not policy_active(policy()) and not policy_active(policy(thinking_mode="passthrough"))
    assert policy_active(policy(system_suffix="x")) and policy_active(policy(thinking_mode="auto"))
