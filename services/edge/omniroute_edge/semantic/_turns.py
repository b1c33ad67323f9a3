"""Where each client format keeps the conversation, as data, and the split of a request into what is embedded
(the text of the last user turn) and what must match exactly (everything else).

The semantic tier compares only the question being asked. Everything that could change the answer for the same
question (model, every sampling and generation parameter, tools, the system prompt, the stream flag, and every
earlier turn of the conversation) stays in the exact part, whose hash scopes the search: a paraphrase of the last
question can hit only an entry whose request matched in all of that. A last turn that carries anything but plain
text (an image, a tool result, a name, a cache-control mark) leaves the request to the exact tier alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omniroute.v1 import common_pb2

__all__ = ["TURNS", "TurnShape", "split_last_turn"]


@dataclass(frozen=True, slots=True)
class TurnShape:
    """How one format writes its turns."""

    turns: str  # the body field holding the list of turns
    content: str  # the turn field holding a string or a list of parts
    turn_keys: frozenset[str]  # every field a plain user turn may have
    default_role: str = ""  # the role of a turn that names none (Gemini's contents)
    # fields that, when present on the turn, must have this value (Responses' {"type": "message"})
    turn_fixed: Mapping[str, str] | None = None
    part_types: frozenset[str] = frozenset()  # values of a part's "type" that mean plain text; empty: untyped parts
    bare_string: bool = False  # the turns field may be a plain string: one user turn (Responses' input)


_MESSAGES = TurnShape("messages", "content", frozenset({"role", "content"}), part_types=frozenset({"text"}))

TURNS: Mapping[common_pb2.Format.ValueType, TurnShape] = {
    common_pb2.FORMAT_OPENAI_CHAT: _MESSAGES,
    common_pb2.FORMAT_ANTHROPIC_MESSAGES: _MESSAGES,
    common_pb2.FORMAT_OPENAI_RESPONSES: TurnShape(
        "input",
        "content",
        frozenset({"role", "content", "type"}),
        turn_fixed={"type": "message"},
        part_types=frozenset({"input_text"}),
        bare_string=True,
    ),
    common_pb2.FORMAT_GEMINI: TurnShape("contents", "parts", frozenset({"role", "parts"}), default_role="user"),
    # Ollama's parts are never lists; a turn with "images" is not plain text
    common_pb2.FORMAT_OLLAMA_CHAT: TurnShape("messages", "content", frozenset({"role", "content"})),
}


def split_last_turn(doc: Mapping[str, Any], shape: TurnShape) -> tuple[str, dict[str, Any]] | None:
    """``(text of the last user turn, the body without that turn)``, or None when the request does not end with a
    plain-text user turn."""
    turns = doc.get(shape.turns)
    if isinstance(turns, str) and shape.bare_string:
        rest = {k: v for k, v in doc.items() if k != shape.turns}
        return (turns, rest) if turns.strip() else None
    if not isinstance(turns, list) or not turns:
        return None
    last = turns[-1]
    if not isinstance(last, dict) or not set(last) <= shape.turn_keys:
        return None
    if last.get("role", shape.default_role) != "user":
        return None
    for key, value in (shape.turn_fixed or {}).items():
        if key in last and last[key] != value:
            return None
    text = _text(last.get(shape.content), shape)
    if text is None or not text.strip():
        return None
    return text, {**doc, shape.turns: turns[:-1]}


def _text(content: Any, shape: TurnShape) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            return None
        if shape.part_types:
            if set(part) != {"type", "text"} or part["type"] not in shape.part_types:
                return None
        elif set(part) != {"text"}:
            return None
        texts.append(part["text"])
    return "\n".join(texts)
