"""The codec package's public surface is pinned (STYLE rule 5): changing it is a deliberate act."""

from __future__ import annotations

from omniroute.v1 import common_pb2
from omniroute_translator import codecs
from omniroute_translator.codecs import anthropic_messages, base, gemini, ollama, openai_chat, openai_responses
from omniroute_translator.codecs.base import Codec


def test_exported_members() -> None:
    assert codecs.__all__ == ["CODECS", "Codec", "codec_for"]
    assert base.__all__ == [
        "Codec",
        "CodecError",
        "Context",
        "DecodedResponse",
        "HubChunk",
        "HubRequest",
        "HubResponse",
        "StreamDecoder",
        "StreamEncoder",
        "StreamEnd",
    ]
    assert openai_chat.__all__ == ["CODEC", "OpenAIChatCodec"]
    assert gemini.__all__ == ["CODEC", "GeminiCodec", "render_models"]
    assert ollama.__all__ == ["CODEC", "OllamaCodec", "render_tags"]
    assert anthropic_messages.__all__ == ["CODEC", "AnthropicMessagesCodec"]
    assert openai_responses.__all__ == ["CODEC", "OpenAIResponsesCodec"]


def test_table() -> None:
    assert codecs.CODECS[common_pb2.FORMAT_OPENAI_CHAT] is openai_chat.CODEC
    assert codecs.CODECS[common_pb2.FORMAT_ANTHROPIC_MESSAGES] is anthropic_messages.CODEC
    assert codecs.CODECS[common_pb2.FORMAT_GEMINI] is gemini.CODEC
    assert codecs.CODECS[common_pb2.FORMAT_OLLAMA_CHAT] is ollama.CODEC
    assert codecs.CODECS[common_pb2.FORMAT_OPENAI_RESPONSES] is openai_responses.CODEC
    assert codecs.codec_for(common_pb2.FORMAT_OPENAI_CHAT) is openai_chat.CODEC
    assert codecs.codec_for(common_pb2.FORMAT_UNSPECIFIED) is None
    codec: Codec = openai_chat.CODEC  # the class satisfies the protocol (checked by mypy)
    assert codec.name == "openai_chat"
    anthropic: Codec = anthropic_messages.CODEC
    assert anthropic.name == "anthropic_messages"
    responses: Codec = openai_responses.CODEC
    assert responses.name == "openai_responses"
