"""Which provider and proxy addresses are refused: link-local, cloud metadata, their IPv6 and legacy IPv4 forms,
non-http(s) schemes; loopback and private ranges stay allowed, and the allow switch turns the guard off."""

from __future__ import annotations

import pytest

from omniroute_core.netguard import refused_address, refused_host, refused_url


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.0.1:8443/v1",
        "http://[fe80::1]/v1",
        "http://[fe80::1%25eth0]/v1",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[::ffff:100.100.100.200]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOG./",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://169.254.43518/",
        "http://0251.0376.0251.0376/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64, the well-known prefix
        "http://[64:ff9b::169.254.169.254]/",
        "http://[64:ff9b::100.100.100.200]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",  # NAT64, the local-use prefix at /96
        "http://[64:ff9b:1:0:a9:fea9:fe00:0]/",  # ... at /64 (the u octet skipped)
        "http://[64:ff9b:1:a9:fe:a9fe::]/",  # ... at /56
        "http://[64:ff9b:1:a9fe:a9:fe00::]/",  # ... at /48
        "http://[2002:a9fe:a9fe::1]/",  # 6to4
        "http://[2001:0:a9fe:a9fe::1]/",  # Teredo, server field
        "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",  # Teredo, client field (stored inverted)
    ],
)
def test_refused(url: str) -> None:
    reason = refused_url(url)
    assert reason is not None and "ALLOW_LINK_LOCAL_PROVIDERS" in reason
    assert refused_url(url, allow=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:11434/v1",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://10.0.0.5/v1",
        "http://192.168.1.10/v1",
        "http://172.16.0.1/v1",
        "http://100.64.0.1/v1",
        "http://[fd00::1]/v1",
        "https://api.openai.com/v1",
        "http://ollama.default.svc.cluster.local:11434",
        "http://metadata.example.com/",
        "http://cafe.be/",
        "http://[64:ff9b::7f00:1]/",  # NAT64 of loopback, like loopback itself
        "http://[64:ff9b::808:808]/",
        "http://[2002:c0a8:101::1]/",  # 6to4 of a private address
        "http://[2001:db8::1]/",  # documentation, not Teredo
    ],
)
def test_allowed(url: str) -> None:
    assert refused_url(url) is None


@pytest.mark.parametrize("url", ["ftp://example.com/", "socks5://127.0.0.1:1080", "file:///etc/passwd", "example.com"])
def test_other_schemes_are_refused_even_when_allowed(url: str) -> None:
    reason = refused_url(url, allow=True)
    assert reason is not None and "only http:// and https://" in reason


def test_addresses_and_hosts() -> None:
    assert refused_address("169.254.169.254") is not None
    assert refused_address("fe80::1%eth0") is not None
    assert refused_address("not-an-ip") is None
    assert refused_address("::") is None and refused_address("::1") is None
    assert refused_host("[::ffff:169.254.169.254]") is not None
    assert refused_host("metadata.google.internal.") is not None
    assert refused_url("http:///nohost") is not None
