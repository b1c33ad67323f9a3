"""Key lookup against the snapshot: required or not, revoked, expired, scopes, every usual header."""

from __future__ import annotations

import time

import pytest

from omniroute_core.crypto import hash_api_key
from omniroute_core.snapshot import ApiKey, ConfigSnapshot
from omniroute_edge.auth import AuthError, authenticate, presented_key

KEY = "sk-omni-good"


def snapshot(**overrides: object) -> ConfigSnapshot:
    fields: dict[str, object] = {"id": "k1", "name": "n", "key_hash": hash_api_key(KEY), "scopes": ("chat",)}
    fields.update(overrides)
    return ConfigSnapshot.build(1, (), (ApiKey(**fields),), {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([(b"authorization", b"Bearer sk-1")], None, "sk-1"),
        ([(b"authorization", b"bearer  sk-2 ")], None, "sk-2"),
        ([(b"x-api-key", b"sk-3")], None, "sk-3"),
        ([(b"x-goog-api-key", b"sk-4")], None, "sk-4"),
        ([], "sk-5", "sk-5"),
        ([(b"authorization", b"Basic abc")], None, None),
        ([], None, None),
    ],
)
def test_presented_key_reads_every_clients_usual_place(
    headers: list[tuple[bytes, bytes]], query: str | None, expected: str | None
) -> None:
    assert presented_key(headers, query) == expected


def test_known_key_is_the_caller() -> None:
    assert authenticate(KEY, snapshot(), required=True, scope="chat").key is not None


def test_unknown_key_is_anonymous_unless_keys_are_required() -> None:
    assert authenticate("sk-omni-unknown", snapshot(), required=False, scope="chat").key is None
    assert authenticate(None, snapshot(), required=False, scope="chat").key is None
    with pytest.raises(AuthError) as missing:
        authenticate(None, snapshot(), required=True, scope="chat")
    assert missing.value.error.status == 401
    assert "missing" in missing.value.error.message
    with pytest.raises(AuthError) as bad:
        authenticate("sk-omni-unknown", snapshot(), required=True, scope="chat")
    assert bad.value.error.status == 401


@pytest.mark.parametrize("required", [True, False])
def test_revoked_and_expired_keys_are_refused_even_when_keys_are_optional(required: bool) -> None:
    with pytest.raises(AuthError):
        authenticate(KEY, snapshot(revoked=True), required=required, scope="chat")
    past = int(time.time() * 1000) - 1
    with pytest.raises(AuthError):
        authenticate(KEY, snapshot(expires_at_ms=past), required=required, scope="chat")


def test_scope_is_checked() -> None:
    with pytest.raises(AuthError) as exc:
        authenticate(KEY, snapshot(scopes=("admin",)), required=True, scope="chat")
    assert exc.value.error.status == 403
    assert authenticate(KEY, snapshot(scopes=("*",)), required=True, scope="chat").key is not None
    assert authenticate(KEY, snapshot(scopes=()), required=True, scope="chat").key is not None


def test_a_listing_admits_any_data_plane_scope_but_not_admin_alone() -> None:
    for scopes in (("embeddings",), ("audio",), ("*",), ()):
        assert authenticate(KEY, snapshot(scopes=scopes), required=True, scope="").key is not None
    with pytest.raises(AuthError) as exc:
        authenticate(KEY, snapshot(scopes=("admin",)), required=True, scope="")
    assert exc.value.error.status == 403
