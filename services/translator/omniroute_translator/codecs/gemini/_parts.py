"""Gemini ``Part`` values ↔ hub content parts, tool calls and reasoning (shared by requests and responses).

Media: ``inlineData {mimeType, data}`` ↔ a ``data:`` URL (``image_url`` for images, ``input_audio`` for wav/mp3,
``file.file_data`` otherwise); ``fileData {mimeType, fileUri}`` ↔ ``image_url`` (images) or a hub ``file`` part
carrying ``file_url`` / ``mime_type`` (an extension: OpenAI has no URL file part).

Reasoning: ``thought: true`` text parts ↔ ``reasoning_content``; their ``thoughtSignature`` ↔
``reasoning_details`` entries ``{"type": "thinking", "thinking", "signature"}``. A signature on a function call
part travels on the hub tool call as ``extra_content.google.thought_signature`` (the convention of Gemini's own
OpenAI-compatible endpoint), so it can be replayed on the next turn as Gemini 3 requires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omniroute_core import jsonx

__all__ = [
    "assistant_message",
    "call_args",
    "hub_part_to_gemini",
    "media_to_hub",
    "obj",
    "reasoning_parts",
    "tool_call_to_part",
    "tool_calls_from_parts",
]

_DATA_URL = re.compile(r"^data:([^;,]+)?((?:;[^;,]*)*?);base64,(.*)$", re.DOTALL)
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
_EXTENSION_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "pdf": "application/pdf",
}


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (lenient reading of optional sub-objects)."""
    return value if isinstance(value, dict) else {}


def media_to_hub(part: dict[str, Any]) -> dict[str, Any] | None:
    """A Gemini ``inlineData`` / ``fileData`` part as a hub content part, or ``None`` when it is neither."""
    inline = part.get("inlineData")
    if isinstance(inline, dict):
        mime = str(inline.get("mimeType") or "application/octet-stream")
        data = str(inline.get("data") or "")
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
        if mime in _AUDIO_FORMATS:
            return {"type": "input_audio", "input_audio": {"data": data, "format": _AUDIO_FORMATS[mime]}}
        return {"type": "file", "file": {"file_data": f"data:{mime};base64,{data}"}}
    file = part.get("fileData")
    if isinstance(file, dict):
        uri = str(file.get("fileUri") or "")
        mime = str(file.get("mimeType") or "")
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": uri}}
        return {"type": "file", "file": {"file_url": uri, **({"mime_type": mime} if mime else {})}}
    return None


def _inline_from_url(url: str) -> dict[str, Any]:
    match = _DATA_URL.match(url)
    if match:
        return {"inlineData": {"mimeType": match.group(1) or "application/octet-stream", "data": match.group(3)}}
    ext = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    # fileData needs a MIME type; an unknown extension on an image_url part is most likely an image
    return {"fileData": {"mimeType": _EXTENSION_MIME.get(ext, "image/jpeg"), "fileUri": url}}


def hub_part_to_gemini(part: Any) -> dict[str, Any] | None:
    """A hub content part as a Gemini part; ``None`` for a part Gemini cannot carry (dropped, see the README)."""
    if isinstance(part, str):
        return {"text": part}
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text") or "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _inline_from_url(str(url or ""))
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        audio = part["input_audio"]
        return {"inlineData": {"mimeType": f"audio/{audio.get('format') or 'wav'}", "data": str(audio.get("data"))}}
    if kind == "file" and isinstance(part.get("file"), dict):
        file = part["file"]
        if isinstance(file.get("file_data"), str):
            return _inline_from_url(file["file_data"])
        if isinstance(file.get("file_url"), str):
            mime = str(file.get("mime_type") or "application/octet-stream")
            return {"fileData": {"mimeType": mime, "fileUri": file["file_url"]}}
    return None


def call_args(arguments: Any) -> dict[str, Any]:
    """OpenAI's JSON-string arguments as Gemini's ``args`` object. Arguments that are not a JSON object (a
    model's truncated call) are kept under ``_raw`` rather than lost."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = jsonx.loads(arguments)
    except jsonx.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def tool_call_to_part(call: Any) -> dict[str, Any] | None:
    """A hub tool call as a ``functionCall`` part (with its thought signature when the hub kept one)."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return None
    function = call["function"]
    out: dict[str, Any] = {
        "functionCall": {"name": str(function.get("name") or ""), "args": call_args(function.get("arguments"))}
    }
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    if isinstance(google, dict) and isinstance(google.get("thought_signature"), str):
        out["thoughtSignature"] = google["thought_signature"]
    return out


def tool_calls_from_parts(parts: list[Any], first_index: int, id_prefix: str) -> list[dict[str, Any]]:
    """The ``functionCall`` parts as hub tool calls. Gemini's call ``id`` is kept when present; otherwise the id
    is ``<id_prefix><n>`` with ``n`` counting from ``first_index`` (deterministic, no uuid)."""
    calls: list[dict[str, Any]] = []
    for part in parts:
        call = part.get("functionCall") if isinstance(part, dict) else None
        if not isinstance(call, dict):
            continue
        n = first_index + len(calls)
        hub_call: dict[str, Any] = {
            "id": str(call.get("id") or f"{id_prefix}{n}"),
            "type": "function",
            "function": {"name": str(call.get("name") or ""), "arguments": jsonx.dumps_str(call.get("args") or {})},
        }
        if isinstance(part.get("thoughtSignature"), str):
            hub_call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
        calls.append(hub_call)
    return calls


def reasoning_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A hub message's reasoning as Gemini thought parts: ``reasoning_details`` when present (signatures kept;
    redacted blocks have no Gemini form and are dropped), else ``reasoning_content`` as one thought part."""
    details = message.get("reasoning_details")
    parts: list[dict[str, Any]] = []
    if isinstance(details, list) and details:
        for item in details:
            if not isinstance(item, dict) or item.get("type") != "thinking":
                continue
            part: dict[str, Any] = {"text": str(item.get("thinking") or ""), "thought": True}
            if isinstance(item.get("signature"), str) and item["signature"]:
                part["thoughtSignature"] = item["signature"]
            parts.append(part)
        return parts
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    return parts


def _details(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Thought parts, and signed non-thought parts (as empty thinking), in order, keeping their signatures."""
    details: list[dict[str, Any]] = []
    for part in parts:
        thought = part.get("thought") is True
        if "functionCall" in part or not (thought or "thoughtSignature" in part):
            continue
        entry: dict[str, Any] = {"type": "thinking", "thinking": str(part.get("text") or "") if thought else ""}
        if isinstance(part.get("thoughtSignature"), str):
            entry["signature"] = part["thoughtSignature"]
        details.append(entry)
    return details


def assistant_message(raw_parts: list[Any], first_call: int, id_prefix: str) -> dict[str, Any]:
    """A ``model`` turn's parts as a hub assistant message: thought text → ``reasoning_content`` (and
    ``reasoning_details`` when any part carries a signature), other text → ``content``, calls → ``tool_calls``."""
    parts = [p for p in raw_parts if isinstance(p, dict)]
    thoughts = [p for p in parts if p.get("thought") is True]
    texts = [str(p["text"]) for p in parts if p.get("thought") is not True and isinstance(p.get("text"), str)]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        message["reasoning_content"] = "".join(str(p.get("text") or "") for p in thoughts)
    if any("thoughtSignature" in p and "functionCall" not in p for p in parts):
        message["reasoning_details"] = _details(parts)
    calls = tool_calls_from_parts(parts, first_call, id_prefix)
    if calls:
        message["tool_calls"] = calls
    return message
