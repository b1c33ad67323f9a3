"""``ProxyConfig``: the stored proxy settings, parsed, and the proxy chosen per provider and URL (``noProxy``)."""

from __future__ import annotations

import pytest

from omniroute_core.crypto import Cipher, generate_encryption_key
from omniroute_core.proxies import NoProxy, ProxyConfig, password_aad, with_credentials


def test_global_proxy_with_an_encrypted_password() -> None:
    cipher = Cipher(generate_encryption_key())
    doc = {
        "enabled": True,
        "url": "http://proxy.corp:3128",
        "username": "me@corp",
        "passwordEnc": cipher.encrypt("p:ss/w", aad=password_aad()),
        "noProxy": ["localhost"],
    }
    config = ProxyConfig.parse(doc, lambda token, aad: cipher.decrypt(token, aad=aad))
    assert config.proxy_for("openai", "https://api.openai.com/v1") == "http://me%40corp:p%3Ass%2Fw@proxy.corp:3128"
    assert config.proxy_for("ollama", "http://localhost:11434/api") is None
    # the password cannot be read without the key: the proxy is still used (and will answer 407)
    assert ProxyConfig.parse(doc, None).proxy_for("openai", "https://x.test/") == "http://me%40corp@proxy.corp:3128"


def test_provider_entries_override_the_global_one() -> None:
    doc = {
        "enabled": False,
        "url": "http://global:1",
        "providers": {"groq": {"url": "https://groq-proxy:8443"}, "openai": {"enabled": False}, "x": "junk"},
    }
    config = ProxyConfig.parse(doc, None)
    assert config.proxy_for("anthropic", "https://api.anthropic.com") is None  # global disabled
    assert config.proxy_for("groq", "https://api.groq.com") == "https://groq-proxy:8443"
    enabled = ProxyConfig.parse({**doc, "enabled": True}, None)
    assert enabled.proxy_for("anthropic", "https://api.anthropic.com") == "http://global:1"
    assert enabled.proxy_for("openai", "https://api.openai.com") is None
    assert ProxyConfig.parse(None, None).proxy_for("openai", "https://api.openai.com") is None


@pytest.mark.parametrize(
    ("host", "direct"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.internal", True),
        ("internal", True),
        ("a.b.example.com", True),
        ("example.com", True),
        ("notexample.com", False),
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("[fd00::7]", True),
        ("api.openai.com", False),
    ],
)
def test_no_proxy_matching(host: str, direct: bool) -> None:
    rules = NoProxy.parse(["localhost", "*.internal", ".example.com", "10.0.0.0/8", "fd00::/8", "bad/cidr", 3])
    assert rules.matches(host) is direct
    assert NoProxy.parse(["*"]).matches(host)


def test_with_credentials() -> None:
    assert with_credentials("http://h:1", "", "") == "http://h:1"
    assert with_credentials("http://h:1", "", "x") == "http://:x@h:1"  # a password alone: empty user name
    assert with_credentials("http://[::1]:8080/", "a", "") == "http://a@[::1]:8080/"
