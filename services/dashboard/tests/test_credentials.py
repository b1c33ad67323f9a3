"""The admin password: generated once when none is configured, announced once, stored only as a hash."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from omniroute_dashboard.credentials import PASSWORD_FILE

from .conftest import PASSWORD, make_settings, start
from .test_auth import assert_error


async def test_generated_password_is_announced_once_and_works(
    pg_database: str, nats_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(pg_database, nats_url, initial_password=None, omniroute_data_dir=str(data_dir))
    async for running in start(settings):
        lines = [line for line in capsys.readouterr().out.splitlines() if "generated admin password" in line]
        assert len(lines) == 1
        password = lines[0].rsplit(": ", 1)[1]
        assert len(password) >= 20

        path = data_dir / PASSWORD_FILE
        assert path.read_text().strip() == password
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        stored = await running.ctx.pool.fetchval("SELECT password_hash FROM admin_credentials")
        assert stored.startswith("scrypt$")
        assert password not in stored

        assert (await running.client.post("/api/auth/login", json={"password": password})).status_code == 200
        wrong = await running.client.post("/api/auth/login", json={"password": password + "x"})
        assert_error(wrong, 401, "authentication_error")
        assert (await running.client.get("/api/init")).json() == {"initialized": True, "requireLogin": True}
        path.unlink()  # the launcher consumed it

    async for running in start(settings):  # a restart keeps the stored password and announces nothing
        assert "generated admin password" not in capsys.readouterr().out
        assert not (data_dir / PASSWORD_FILE).exists()
        assert (await running.client.post("/api/auth/login", json={"password": password})).status_code == 200

    # INITIAL_PASSWORD, when set later, replaces a generated (never user-chosen) password
    async for running in start(settings.model_copy(update={"initial_password": PASSWORD})):
        assert (await running.client.post("/api/auth/login", json={"password": PASSWORD})).status_code == 200
        old = await running.client.post("/api/auth/login", json={"password": password})
        assert_error(old, 401, "authentication_error")


async def test_no_password_is_generated_when_initial_password_is_set(
    pg_database: str, nats_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(pg_database, nats_url, omniroute_data_dir=str(tmp_path))
    async for running in start(settings):
        assert "generated admin password" not in capsys.readouterr().out
        assert not (tmp_path / PASSWORD_FILE).exists()
        assert await running.ctx.pool.fetchval("SELECT count(*) FROM admin_credentials") == 0


async def test_a_user_set_password_wins_over_initial_password(pg_database: str, nats_url: str) -> None:
    from omniroute_core.crypto import hash_password

    async for running in start(make_settings(pg_database, nats_url)):
        await running.ctx.pool.execute(
            "INSERT INTO admin_credentials (id, password_hash, source) VALUES (1, $1, 'user')",
            hash_password("chosen-by-the-admin"),
        )
        assert_error(
            await running.client.post("/api/auth/login", json={"password": PASSWORD}), 401, "authentication_error"
        )
        ok = await running.client.post("/api/auth/login", json={"password": "chosen-by-the-admin"})
        assert ok.status_code == 200
