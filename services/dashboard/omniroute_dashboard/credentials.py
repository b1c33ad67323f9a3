"""The admin password and dashboard sessions (storage side; the HTTP side is :mod:`omniroute_dashboard.auth`).

Which password is valid, in order:

1. one set through the API (stored with source ``user``);
2. else ``INITIAL_PASSWORD`` when set;
3. else the password generated on first start (stored as a scrypt hash with source ``generated``).

Session tokens are random 256-bit strings; only their SHA-256 is stored, so a database leak yields no session.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from omniroute_core.crypto import hash_password, verify_password
from omniroute_dashboard.settings import DashboardSettings
from omniroute_dashboard.store import Pool

__all__ = [
    "PASSWORD_FILE",
    "announce_generated_password",
    "check_password",
    "create_session",
    "delete_session",
    "ensure_admin_password",
    "has_password",
    "session_valid",
]

log = logging.getLogger(__name__)

PASSWORD_FILE = "initial-password"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_admin_password(pool: Pool, settings: DashboardSettings) -> str | None:
    """Generate and store a password when none is configured. Returns it only to the one replica that stored it
    (the caller announces it); None when a password already exists or ``INITIAL_PASSWORD`` is set."""
    if settings.initial_password:
        return None
    if await pool.fetchval("SELECT 1 FROM admin_credentials WHERE id = 1"):
        return None
    password = secrets.token_urlsafe(18)
    hashed = await asyncio.to_thread(hash_password, password)
    stored = await pool.fetchval(
        "INSERT INTO admin_credentials (id, password_hash, source) VALUES (1, $1, 'generated') "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        hashed,
    )
    return password if stored else None


def announce_generated_password(password: str, data_dir: str | None) -> None:
    """Print the generated password once to stdout and, with a data dir, write it to ``initial-password`` (0600)
    for the launcher's banner. Nothing else ever sees the clear text."""
    print(f"OmniRoute dashboard: generated admin password: {password}", file=sys.stdout, flush=True)
    if not data_dir:
        return
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PASSWORD_FILE
    path.unlink(missing_ok=True)  # a fresh inode, so the mode below applies even if an old file was wider
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    log.info("generated admin password written", extra={"path": str(path)})


async def has_password(pool: Pool, settings: DashboardSettings) -> bool:
    if settings.initial_password:
        return True
    return bool(await pool.fetchval("SELECT 1 FROM admin_credentials WHERE id = 1"))


async def check_password(pool: Pool, settings: DashboardSettings, password: str) -> bool:
    """Whether ``password`` is the admin password (precedence in the module docstring)."""
    row = await pool.fetchrow("SELECT password_hash, source FROM admin_credentials WHERE id = 1")
    if row is not None and (row["source"] == "user" or not settings.initial_password):
        return await asyncio.to_thread(verify_password, password, row["password_hash"])
    if settings.initial_password:
        return hmac.compare_digest(password.encode(), settings.initial_password.encode())
    return False


async def create_session(pool: Pool, ttl: timedelta) -> str:
    """A new session token (clear text, for the cookie); expired sessions are swept on the way."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM dashboard_sessions WHERE expires_at <= now()")
        await conn.execute(
            "INSERT INTO dashboard_sessions (token_hash, expires_at) VALUES ($1, now() + $2)", _token_hash(token), ttl
        )
    return token


async def session_valid(pool: Pool, token: str) -> bool:
    found = await pool.fetchval(
        "SELECT 1 FROM dashboard_sessions WHERE token_hash = $1 AND expires_at > now()", _token_hash(token)
    )
    return bool(found)


async def delete_session(pool: Pool, token: str) -> None:
    await pool.execute("DELETE FROM dashboard_sessions WHERE token_hash = $1", _token_hash(token))
