"""deploy/: the Kubernetes manifests build, validate against the Kubernetes schemas, agree with
the application (ports, probe routes, settings names, mode profiles), and every YAML
file in the repository passes yamllint with ``.yamllint.yaml``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from yamllint import linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

from guilde_core.config import PROFILES, Settings
from guilde_core.redaction import is_secret_name
from tests.docs.kustomize_lite import KustomizeError, apply_json_patch, build
from tools.harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MESH = ROOT / "deploy" / "mesh"
OVERLAYS = ("development", "staging", "production")
TARGETS = ("base", *(f"overlays/{name}" for name in OVERLAYS))
#: oldest Kubernetes the manifests support (preStop `sleep` needs 1.30) and the newest schema
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SKIP_DIRS = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

Resource = dict[str, Any]


def _render(target: str) -> list[Resource]:
    return build(K8S / target)


def _by_key(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def _yaml_files() -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".dev3000")]
        for name in filenames:
            if name.endswith((".yaml", ".yml")) or name == ".yamllint":
                yield Path(dirpath) / name


# --------------------------------------------------------------------------------------
# yamllint
# --------------------------------------------------------------------------------------


def test_every_yaml_file_passes_yamllint() -> None:
    conf = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    files = [p for p in _yaml_files() if not conf.is_file_ignored(str(p.relative_to(ROOT)))]
    assert any(p.is_relative_to(K8S) for p in files), "the deploy manifests were not linted"
    errors = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for problem in linter.run(text, conf, str(path)):
            if problem.level == "error":
                errors.append(
                    f"{path.relative_to(ROOT)}:{problem.line}:{problem.column}: {problem}"
                )
    assert not errors, "yamllint errors:\n" + "\n".join(errors)


def test_yamllint_config_catches_a_real_error(tmp_path: Path) -> None:
    """The configuration is not so lax that it lets broken YAML through."""
    conf = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    bad = "a: 1\na: 2\nb:  [1,2\n"
    problems = [p for p in linter.run(bad, conf, str(tmp_path / "x.yaml")) if p.level == "error"]
    assert problems, "duplicate keys / a syntax error must be reported"


# --------------------------------------------------------------------------------------
# Kubernetes manifests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_manifests_build_and_validate_against_kubernetes_schemas(target: str) -> None:
    resources = _render(target)
    kinds = {r["kind"] for r in resources}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceAccount",
    } <= kinds
    failures = []
    for res in resources:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(res, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                failures.append(
                    f"{res['kind']}/{res['metadata']['name']} (k8s {version}): "
                    f"{exc.message} at {'/'.join(map(str, exc.path))}"
                )
    assert not failures, "\n".join(failures)


def test_schema_validation_rejects_a_broken_manifest() -> None:
    """The validator really checks: a probe with a string port number and a typo'd field fail."""
    deployment = _by_key(_render("base"))[("Deployment", "dev3000")]
    broken = apply_json_patch(
        deployment,
        [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/livenessProbe/httpGet/pth",
                "value": "/x",
            },
        ],
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("target", TARGETS)
def test_lite_renderer_matches_kubectl_kustomize(target: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    theirs = _by_key([d for d in yaml.safe_load_all(out) if d])
    ours = _by_key(_render(target))
    assert ours.keys() == theirs.keys()
    for key, res in ours.items():
        assert res == theirs[key], f"{key} differs from kubectl kustomize"


def test_lite_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n", encoding="utf-8"
    )
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\npatches:\n  - target: {kind: Deployment, name: nope}\n"
        "    patch: '[{op: remove, path: /spec}]'\n",
        encoding="utf-8",
    )
    with pytest.raises(KustomizeError, match="matches no resource"):
        build(tmp_path)


def _container(res: Resource) -> dict[str, Any]:
    containers: list[dict[str, Any]] = res["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == port))


@pytest.mark.parametrize(
    ("app", "port", "live", "ready"),
    [
        (
            "dev3000",
            Settings.model_fields["dev3000_port"].default,
            "/api/v1/health/live",
            "/api/v1/health/ready",
        ),
        ("agent-web", Settings.model_fields["agent_web_port"].default, "/health", "/health"),
    ],
)
def test_probes_ports_and_wiring(app: str, port: int, live: str, ready: str) -> None:
    resources = _by_key(_render("base"))
    deployment = resources[("Deployment", app)]
    container = _container(deployment)
    probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["startupProbe"]["httpGet"]["path"] == live
    assert probes["livenessProbe"]["httpGet"]["path"] == live
    assert probes["readinessProbe"]["httpGet"]["path"] == ready
    for probe in probes.values():
        assert _port_number(container, probe["httpGet"]["port"]) == port
    # startup probe gives the process time to start; liveness is not the readiness check
    startup = probes["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    resources_spec = container["resources"]
    assert {"cpu", "memory"} <= resources_spec["requests"].keys()
    assert "memory" in resources_spec["limits"]
    env_from = container["envFrom"]
    assert {"configMapRef": {"name": "guilde-diag-config"}} in env_from
    assert any(e.get("secretRef", {}).get("name") == "guilde-diag-secrets" for e in env_from)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = resources[("Service", app)]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert _port_number(container, service["spec"]["ports"][0]["targetPort"]) == port
    hpa = resources[("HorizontalPodAutoscaler", app)]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": app,
    }
    pdb = resources[("PodDisruptionBudget", app)]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    policy = resources[("NetworkPolicy", app)]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {port}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def _config(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = _by_key(resources)[("ConfigMap", "guilde-diag-config")]["data"]
    return data


def _known_variable(name: str) -> bool:
    if name.lower() in Settings.model_fields:
        return True
    prefixes = ("CB_", "RETRY_", "TIMEOUT_", "CLIENT_RATE_LIMIT_")
    return name.startswith(prefixes)


@pytest.mark.parametrize("target", TARGETS)
def test_configmap_holds_only_real_non_secret_settings(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _config(_render(target))
    unknown = [k for k in data if not _known_variable(k)]
    assert not unknown, f"ConfigMap keys that are no guilde-diag setting: {unknown}"
    secret = [k for k in data if is_secret_name(k)]
    assert not secret, f"secrets belong in the Secret, not the ConfigMap: {secret}"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # validates every value the ConfigMap sets
    assert settings.dev3000_port == int(data["DEV3000_PORT"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_carries_the_seed_profile_values(overlay: str) -> None:
    data = _config(_render(f"overlays/{overlay}"))
    assert data["DEV3000_MODE"] == overlay
    profile = PROFILES[overlay]
    mismatched = {k: (data.get(k), v) for k, v in profile.items() if data.get(k) != v}
    assert not mismatched, f"{overlay}: ConfigMap vs mode profile: {mismatched}"
    assert data["SENTRY_ENVIRONMENT"] == overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_out_overlays_share_state(overlay: str) -> None:
    """More than one replica is only allowed with shared Redis state and shared sessions."""
    resources = _render(f"overlays/{overlay}")
    data = _config(resources)
    by_key = _by_key(resources)
    for app in ("dev3000", "agent-web"):
        hpa = by_key[("HorizontalPodAutoscaler", app)]["spec"]
        replicas = by_key[("Deployment", app)]["spec"]["replicas"]
        assert hpa["minReplicas"] <= replicas <= hpa["maxReplicas"]
        if hpa["maxReplicas"] > 1:
            assert data.get("REDIS_URL"), f"{overlay}/{app} scales out without REDIS_URL"
            assert data.get("CIRCUIT_BREAKER_REDIS_URL")
            assert data.get("AGENT_CHECKPOINTER") in {"postgres", "redis"}
            pdb = by_key[("PodDisruptionBudget", app)]["spec"]
            if "minAvailable" in pdb:
                assert pdb["minAvailable"] < hpa["minReplicas"], "PDB would block every drain"


def test_production_requires_its_secret() -> None:
    resources = _by_key(_render("overlays/production"))
    for app in ("dev3000", "agent-web"):
        env_from = _container(resources[("Deployment", app)])["envFrom"]
        secret = next(e["secretRef"] for e in env_from if "secretRef" in e)
        assert secret["optional"] is False
    assert _config(list(resources.values()))["DIAGNOSTIC_AUTH_REQUIRED"] == "true"


# --------------------------------------------------------------------------------------
# The application serves what the probes ask for
# --------------------------------------------------------------------------------------


def _get_all(base_url: str, container: dict[str, Any]) -> dict[str, int]:
    """GET each probe's path like a kubelet would."""
    return {
        container[p]["httpGet"]["path"]: httpx.get(
            base_url + container[p]["httpGet"]["path"], timeout=10
        ).status_code
        for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }


@pytest.fixture(scope="module")
def dev3000_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real dev3000 app served by uvicorn (lifespan on), as its pod would run it."""
    from dev3000.app import create_app

    cwd = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("dev3000"))  # data dir and logs in a temporary folder
    try:
        with ServerThread(create_app(Settings())) as server:
            yield server.url
    finally:
        os.chdir(cwd)


def test_dev3000_app_answers_its_probes(dev3000_url: str) -> None:
    container = _container(_by_key(_render("base"))[("Deployment", "dev3000")])
    statuses = _get_all(dev3000_url, container)
    assert statuses == dict.fromkeys(statuses, 200), statuses
    port = _port_number(container, container["livenessProbe"]["httpGet"]["port"])
    assert port == Settings().dev3000_port


def test_agent_web_answers_its_probe_and_binds_all_interfaces(
    dev3000_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.web import create_app

    monkeypatch.chdir(tmp_path)
    container = _container(_by_key(_render("base"))[("Deployment", "agent-web")])
    app = create_app(Settings(), mcp_url=dev3000_url + "/mcp")
    with ServerThread(app) as server:
        assert _get_all(server.url, container) == {"/health": 200}
    args = container["args"]
    assert args[:2] == ["agent", "web"]
    # the CLI binds 127.0.0.1 by default, which a kubelet probe cannot reach
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--url") + 1] == "http://dev3000:3001/mcp"


# --------------------------------------------------------------------------------------
# Service-mesh example: complements the in-process breakers, never fights them
# --------------------------------------------------------------------------------------

_MESH_APIS = {"networking.istio.io/v1", "security.istio.io/v1"}
_SAFE_RETRY_ON = {"connect-failure", "refused-stream", "reset"}
_NEVER_REACHED = {"connect-failure", "refused-stream"}


def _mesh() -> list[Resource]:
    docs: list[Resource] = []
    for path in sorted(MESH.rglob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def test_mesh_resources_target_real_services_and_ports() -> None:
    docs = _mesh()
    assert {d["kind"] for d in docs} >= {"DestinationRule", "VirtualService", "ServiceEntry"}
    services = {
        r["metadata"]["name"]: {p["port"] for p in r["spec"]["ports"]}
        for r in _render("base")
        if r["kind"] == "Service"
    }
    external = {h for d in docs if d["kind"] == "ServiceEntry" for h in d["spec"]["hosts"]}
    for doc in docs:
        assert doc["apiVersion"] in _MESH_APIS, doc["metadata"]["name"]
        if doc["kind"] == "DestinationRule":
            assert doc["spec"]["host"] in services.keys() | external
        if doc["kind"] == "VirtualService":
            for route in doc["spec"]["http"]:
                for dest in route["route"]:
                    host, port = dest["destination"]["host"], dest["destination"]["port"]["number"]
                    assert port in services[host], f"{host}:{port} is not a Service port"


def test_mesh_never_retries_or_ejects_on_http_status() -> None:
    """A 503 from a health route is an answer and a 429 carries Retry-After: the mesh must
    leave status handling to the in-process resilience layer."""
    for doc in _mesh():
        if doc["kind"] == "DestinationRule":
            outlier = doc["spec"]["trafficPolicy"]["outlierDetection"]
            assert outlier["splitExternalLocalOriginErrors"] is True
            assert outlier.get("consecutive5xxErrors") == 0
            assert outlier.get("consecutiveGatewayErrors") == 0
        if doc["kind"] == "VirtualService":
            for route in doc["spec"]["http"]:
                retries = route["retries"]
                retry_on = set(filter(None, retries.get("retryOn", "").split(",")))
                assert retry_on <= _SAFE_RETRY_ON, f"{route['name']}: retries on {retry_on}"
                if route["name"] in {"mcp", "writes"} or doc["metadata"]["name"] == "agent-web":
                    # may carry side effects (circuit control, an agent run): only requests
                    # that never reached a pod are retried
                    assert retry_on <= _NEVER_REACHED
                    assert retries["attempts"] <= 1


def test_mesh_streams_have_no_timeout_and_no_retries() -> None:
    vs = next(
        d for d in _mesh() if d["kind"] == "VirtualService" and d["metadata"]["name"] == "dev3000"
    )
    stream = next(r for r in vs["spec"]["http"] if r["name"] == "stream")
    prefixes = {m["uri"]["prefix"] for m in stream["match"]}
    assert "/api/v1/diag/stream" in prefixes
    assert stream["timeout"] == "0s"
    assert stream["retries"]["attempts"] == 0
    # the stream route comes first, so no later catch-all can put a timeout on it
    assert vs["spec"]["http"][0] is stream


# --------------------------------------------------------------------------------------
# The manifests run the image the project builds
# --------------------------------------------------------------------------------------


def _dockerfile_runtime() -> dict[str, str]:
    """Instructions of the last stage of Dockerfile.dev3000 (continuation lines joined)."""
    text = (ROOT / "Dockerfile.dev3000").read_text(encoding="utf-8").replace("\\\n", " ")
    stage = text.rsplit("\nFROM ", 1)[-1]
    out: dict[str, str] = {}
    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word.isupper() and rest:
            out[word] = (out.get(word, "") + " " + rest).strip() if word == "ENV" else rest
    return out


def test_manifests_match_the_image() -> None:
    if not (ROOT / "Dockerfile.dev3000").is_file():  # pragma: no cover - before the container
        pytest.skip("Dockerfile.dev3000 not in this checkout")
    image = _dockerfile_runtime()
    uid, _, gid = image["USER"].partition(":")
    entrypoint = yaml.safe_load(image["ENTRYPOINT"])
    assert entrypoint == ["dev3000"]
    resources = _by_key(_render("base"))
    for app, port in (("dev3000", 3001), ("agent-web", 8001)):
        deployment = resources[("Deployment", app)]
        pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
        assert str(pod_security["runAsUser"]) == uid
        assert str(pod_security["runAsGroup"]) == (gid or uid)
        container = _container(deployment)
        assert container["image"].split(":")[0] == "guilde-dev3000"
        # no `command`: the image's ENTRYPOINT (dev3000) runs with these args
        assert "command" not in container
        assert container["args"][0] in {"serve", "agent"}
        assert container["ports"][0]["containerPort"] == port
    assert "3001" in image["EXPOSE"].split()
    assert yaml.safe_load(image["CMD"]) == _container(resources[("Deployment", "dev3000")])["args"]
    # the paths the image prepares are the ones the ConfigMap and the mounts use
    data = _config(list(resources.values()))
    mounts = {
        m["mountPath"] for m in _container(resources[("Deployment", "dev3000")])["volumeMounts"]
    }
    assert data["DEV3000_DATA_DIR"] in image["ENV"]
    assert data["DEV3000_DATA_DIR"] in mounts
    assert data["DEV3000_LOG_PATHS"] in image["ENV"]
    assert data["DEV3000_LOG_PATHS"] in mounts
