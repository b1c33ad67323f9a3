"""The IP filter's rules and the client address behind trusted proxies."""

from __future__ import annotations

import pytest

from omniroute_edge.ipfilter import IpRules, client_address, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", "", "203.0.113.9"),
        # an untrusted peer's header is the client's own claim: ignored
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        # the client prepends a forged hop; the rightmost untrusted address is the real one
        ("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.7", "1.2.3.4"),
        ("10.0.0.2", "10.1.1.1, 10.0.0.7", "10.1.1.1"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address(peer: str, xff: str, expected: str) -> None:
    assert client_address(peer, xff, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("10.0.0.2", "1.2.3.4", ()) == "10.0.0.2"


def rules(**raw: object) -> IpRules:
    return IpRules.from_settings({"ipFilter": {"enabled": True, **raw}})


def test_rules() -> None:
    assert not IpRules.from_settings({}).refuses("1.2.3.4")
    assert not IpRules.from_settings({"ipFilter": {"enabled": False, "allowlist": ["9.9.9.9"]}}).refuses("1.2.3.4")
    allow = rules(allowlist=["192.168.0.0/16", "127.0.0.1"])
    assert not allow.refuses("192.168.4.4")
    assert not allow.refuses("127.0.0.1")
    assert not allow.refuses("::ffff:127.0.0.1")
    assert allow.refuses("8.8.8.8")
    assert allow.refuses("not-an-address")
    block = rules(blocklist=["8.8.8.0/24"])
    assert block.refuses("8.8.8.8")
    assert not block.refuses("8.8.4.4")
    both = rules(allowlist=["8.0.0.0/8"], blocklist=["8.8.8.8"])
    assert both.refuses("8.8.8.8")
    assert not both.refuses("8.8.4.4")


def test_a_malformed_setting_disables_the_filter() -> None:
    assert not rules(allowlist=["not a cidr"]).refuses("1.2.3.4")
    assert not rules(allowlist="1.2.3.4").refuses("1.2.3.4")
