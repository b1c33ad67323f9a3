# syntax=docker/dockerfile:1
# One image per service, all built from the workspace with the lock file:
#   docker build --target edge -t omniroute-edge .      (targets: edge translator executor usage dashboard)
# Each build-<name> stage installs exactly one package and its locked dependencies (no dev tools, not editable)
# into /app/.venv; each target copies that venv onto a slim Python and runs as a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# uv comes from PyPI like every other dependency (no installer script downloaded at build time)
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# mypyc compiles the hot-path modules (tools/build_native.py) in each build stage: a C compiler and mypy (the
# lock's version) live here, in a tool venv of their own, and never reach the runtime images
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN uv venv /opt/build-tools && uv pip install --python /opt/build-tools/bin/python mypy==2.4.1 setuptools==84.2.1
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY tools/build_native.py tools/

FROM builder AS build-edge
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable --package omniroute-edge \
    && /opt/build-tools/bin/python tools/build_native.py --python /app/.venv/bin/python --strict

FROM builder AS build-translator
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable --package omniroute-translator \
    && /opt/build-tools/bin/python tools/build_native.py --python /app/.venv/bin/python --strict

FROM builder AS build-executor
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable --package omniroute-executor \
    && /opt/build-tools/bin/python tools/build_native.py --python /app/.venv/bin/python --strict

FROM builder AS build-usage
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable --package omniroute-usage \
    && /opt/build-tools/bin/python tools/build_native.py --python /app/.venv/bin/python --strict

FROM builder AS build-dashboard
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-editable --package omniroute-dashboard \
    && /opt/build-tools/bin/python tools/build_native.py --python /app/.venv/bin/python --strict

# The shared runtime: same Python as the builder (the venv links to its interpreter), no compilers, no uv.
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 omniroute \
    && useradd --system --uid 10001 --gid omniroute --home-dir /app --no-create-home --shell /usr/sbin/nologin omniroute \
    && mkdir -p /var/lib/omniroute \
    && chown omniroute:omniroute /var/lib/omniroute
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BIND_HOST=0.0.0.0 \
    OMNIROUTE_DATA_DIR=/var/lib/omniroute
WORKDIR /app
# numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
USER 10001:10001

# Health checks run python in exec form (no shell) and read the port from the environment, so overriding the
# port variable keeps the check right. gRPC: the standard grpc.health.v1 service, through the image's own grpcio.
FROM runtime AS translator
COPY --from=build-translator /app/.venv /app/.venv
ENV TRANSLATOR_PORT=50051 METRICS_PORT=9101
EXPOSE 50051 9101
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:' + os.environ['TRANSLATOR_PORT'])).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"]
CMD ["omniroute-translator"]

FROM runtime AS executor
COPY --from=build-executor /app/.venv /app/.venv
ENV EXECUTOR_PORT=50052 METRICS_PORT=9102
EXPOSE 50052 9102
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:' + os.environ['EXECUTOR_PORT'])).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"]
CMD ["omniroute-executor"]

FROM runtime AS usage
COPY --from=build-usage /app/.venv /app/.venv
ENV USAGE_PORT=50053 METRICS_PORT=9103
EXPOSE 50053 9103
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:' + os.environ['USAGE_PORT'])).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"]
CMD ["omniroute-usage"]

# HTTP health: urllib raises on anything but 2xx, so the exit code is the verdict.
FROM runtime AS dashboard
COPY --from=build-dashboard /app/.venv /app/.venv
ENV DASHBOARD_PORT=20129 METRICS_PORT=9104
EXPOSE 20129 9104
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['DASHBOARD_PORT'] + '/api/monitoring/health', timeout=3)"]
CMD ["omniroute-dashboard"]

FROM runtime AS edge
COPY --from=build-edge /app/.venv /app/.venv
ENV EDGE_PORT=20128 METRICS_PORT=9100
EXPOSE 20128 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['EDGE_PORT'] + '/health', timeout=3)"]
CMD ["omniroute-edge"]
