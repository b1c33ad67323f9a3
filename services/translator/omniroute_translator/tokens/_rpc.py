"""``CountTokens``: a client request body → its input-token count, rendered in the client's format. Pure apart
from the tokenizer tables (loaded once, then read-only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_core import jsonx
from omniroute_core.errors import hub_error
from omniroute_core.formats import format_name
from omniroute_translator.codecs.base import Codec, CodecError
from omniroute_translator.tokens._count import count_request
from omniroute_translator.tokens._encodings import Tokenizers
from omniroute_translator.tokens._families import family_for

__all__ = ["COUNT_REPLIES", "count_tokens"]

JSON = "application/json"

# Each format's count-tokens reply body, as its vendor documents it. A format without an entry has no such
# endpoint (OpenAI Chat, Ollama), so a count asked for in it is a 400.
COUNT_REPLIES: Mapping[common_pb2.Format.ValueType, Callable[[int], bytes]] = MappingProxyType(
    {
        # POST /v1/messages/count_tokens
        common_pb2.FORMAT_ANTHROPIC_MESSAGES: lambda n: jsonx.dumps({"input_tokens": n}),
        # POST /v1beta/models/{model}:countTokens
        common_pb2.FORMAT_GEMINI: lambda n: jsonx.dumps({"totalTokens": n}),
        # POST /v1/responses/input_tokens
        common_pb2.FORMAT_OPENAI_RESPONSES: lambda n: jsonx.dumps(
            {"object": "response.input_tokens", "input_tokens": n}
        ),
    }
)


def count_tokens(
    table: Mapping[common_pb2.Format.ValueType, Codec], tokenizers: Tokenizers, req: translator_pb2.CountTokensIn
) -> translator_pb2.CountTokensOut:
    """Decode ``req.body`` with the source codec (validating it), count it with the family of ``req.model`` (or
    of the body's model) and render the count. Errors come back in ``error``: 400 for a format with no codec or
    no count reply, and the codec's own 400 for a malformed body."""
    codec = table.get(req.source)
    render = COUNT_REPLIES.get(req.source)
    if codec is None or render is None:
        return translator_pb2.CountTokensOut(
            error=hub_error(
                400,
                f"counting tokens is not available for format {format_name(req.source)!r}",
                code="unsupported_format",
            )
        )
    try:
        hub = codec.decode_request(req.body)
    except CodecError as exc:
        return translator_pb2.CountTokensOut(error=exc.error)
    family = family_for(req.model or str(hub.get("model") or ""))
    tokens = count_request(hub, family, lambda text: tokenizers.count(family.encoding, text))
    return translator_pb2.CountTokensOut(
        input_tokens=tokens, body=render(tokens), content_type=JSON, encoding=family.encoding, family=family.name
    )
