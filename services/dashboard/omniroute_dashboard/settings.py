"""Dashboard settings, read once from the environment in ``main()`` and passed down."""

from __future__ import annotations

from omniroute_core.settings import CommonSettings

__all__ = ["DashboardSettings"]


class DashboardSettings(CommonSettings):
    """Environment of the control plane (field names are the env names, upper-cased).

    - ``DASHBOARD_PORT``: the HTTP port of the management API.
    - ``METRICS_PORT``: a separate Prometheus port (0 disables it; ``/metrics`` is also served on the API port).
    - ``INITIAL_PASSWORD``: the admin password while none was set through the API; when unset and nothing is
      stored, a password is generated on first start and announced once (stdout and
      ``$OMNIROUTE_DATA_DIR/initial-password``).
    - ``COOKIE_SECURE``: mark the session cookie ``Secure`` (set it when served over HTTPS).
    - ``SESSION_TTL_HOURS``: lifetime of a login session.
    - ``PUBLISH_WAIT_S``: how long a mutating request waits for its config version to reach NATS before
      answering anyway (the background publisher keeps retrying).
    - ``ALLOW_LINK_LOCAL_PROVIDERS``: accept link-local and cloud metadata addresses as provider base URLs and
      proxy URLs (refused with 400 by default: :mod:`omniroute_core.netguard`).
    """

    dashboard_port: int = 20129
    metrics_port: int = 9104
    initial_password: str | None = None
    omniroute_data_dir: str | None = None
    cookie_secure: bool = False
    session_ttl_hours: int = 24
    db_pool_size: int = 10
    publish_wait_s: float = 1.0
    allow_link_local_providers: bool = False
