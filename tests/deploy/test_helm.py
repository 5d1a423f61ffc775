"""The Helm chart deploy/helm/mloop: rendered with `helm template` for the default and the production values,
every object validated by `kubernetes-validate --strict` for each Kubernetes version the chart claims
(Prometheus Operator objects by tests/deploy/crd_validate.py), `helm lint` and checkov clean, and the
rendered objects doing what the chart promises.

The tools come from `bash scripts/deploy-tools.sh` (.tools/); without them these tests skip.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mloop.cli.main import app
from mloop.config import parse_config

from .conftest import REPO, TOOLS_VENV_BIN

CHART = REPO / "deploy" / "helm" / "mloop"
PRODUCTION = CHART / "values-production.yaml"
VALUES = {"default": None, "production": PRODUCTION}
NAMESPACE = "mloop"
RELEASE = "rel"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
POD_KINDS = {"Deployment", "CronJob", "Job", "Pod"}
OPTIONAL_KINDS = {
    "HorizontalPodAutoscaler",
    "Ingress",
    "PodDisruptionBudget",
    "ServiceMonitor",
    "PrometheusRule",
    "CronJob",
    "Job",
    "PersistentVolumeClaim",
}

Doc = dict[str, Any]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def chart_min_version() -> str:
    """The lower bound of Chart.yaml's kubeVersion (">=1.30.0-0" -> "1.30.0")."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["kubeVersion"]
    match = re.fullmatch(r">=\s*v?(\d+\.\d+\.\d+)(?:-0)?", constraint.strip())
    assert match, f"kubeVersion {constraint!r} is not of the form >=X.Y.Z-0 this test understands"
    return match.group(1)


def claimed_versions() -> list[str]:
    """Every Kubernetes version kubernetes-validate ships strict schemas for, from the chart's minimum on."""
    schemas = sorted(TOOLS_VENV_BIN.parent.glob("lib/python*/site-packages/kubernetes_validate/kubernetes-json-schema"))
    shipped = {
        p.name.removeprefix("v").removesuffix("-local-strict") for s in schemas for p in s.glob("v*-local-strict")
    }
    minimum = _version_key(chart_min_version())
    return sorted((v for v in shipped if _version_key(v) >= minimum), key=_version_key)


NOT_INSTALLED = "(kubernetes-validate not installed in .tools)"
VERSIONS = claimed_versions() or [NOT_INSTALLED]


def skip_without_schemas() -> None:
    if VERSIONS == [NOT_INSTALLED]:
        pytest.skip("kubernetes-validate is not installed in the tools venv: run `bash scripts/deploy-tools.sh`")


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)


@pytest.fixture(scope="session")
def helm(tool: Callable[[str], str]) -> str:
    return tool("helm")


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Doc]]:
    """`render(values_file, "key=value", ..., kube_version=None)` -> the objects `helm template` makes."""

    def _render(values: Path | None = None, *sets: str, kube_version: str | None = None) -> list[Doc]:
        args = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        if values is not None:
            args += ["-f", str(values)]
        for item in sets:
            args += ["--set", item]
        if kube_version:
            args += ["--kube-version", kube_version]
        result = run(args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


@pytest.fixture(scope="session")
def default(render: Callable[..., list[Doc]]) -> list[Doc]:
    return render()


@pytest.fixture(scope="session")
def production(render: Callable[..., list[Doc]]) -> list[Doc]:
    return render(PRODUCTION)


def kinds(docs: list[Doc]) -> set[str]:
    return {doc["kind"] for doc in docs}


def one(docs: list[Doc], kind: str, name_suffix: str = "") -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "Pod":
        return doc["metadata"]["labels"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and In expressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


# --- lint and schema validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_helm_lint_passes(helm: str, values: str) -> None:
    args = [helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    if VALUES[values]:
        args += ["-f", str(VALUES[values])]
    result = run(args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_strictly(
    tool: Callable[[str], str], render: Callable[..., list[Doc]], tmp_path: Path, values: str, version: str
) -> None:
    skip_without_schemas()
    validate = tool("kubernetes-validate")
    docs = render(VALUES[values], kube_version=version)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    result = run([validate, "--strict", "-k", version, str(manifest)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.findall(r"passed for resource (\S+)/", output)
    no_schema = set(re.findall(r"Couldn't find schema for kind (\S+)", output))
    assert no_schema <= CRD_KINDS, output  # only the Prometheus Operator's kinds lack a built-in schema
    assert len(passed) == len([d for d in docs if d["kind"] not in CRD_KINDS]), output


def test_the_chart_claims_only_versions_it_is_validated_for(helm: str) -> None:
    skip_without_schemas()
    assert VERSIONS[0] == chart_min_version(), f"kubernetes-validate ships no schema for {chart_min_version()}"
    below = _version_key(chart_min_version())[:1] + (_version_key(chart_min_version())[1] - 1, 0)
    result = run([helm, "template", RELEASE, str(CHART), "--kube-version", ".".join(map(str, below))])
    assert result.returncode != 0 and "kubeVersion" in result.stderr, result.stderr


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_prometheus_operator_objects_validate(
    tools_python: str, render: Callable[..., list[Doc]], tmp_path: Path, values: str
) -> None:
    docs = render(VALUES[values], "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    result = run([tools_python, str(Path(__file__).with_name("crd_validate.py")), str(manifest)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checked 2 Prometheus Operator objects, 0 problems" in result.stdout


def _checkov_summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, "\n".join(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})" for c in failed
    )
    return {key: sum(r["summary"][key] for r in reports) for key in ("passed", "failed", "skipped", "parsing_errors")}


def test_checkov_passes_on_the_chart(tool: Callable[[str], str], tools_env: dict[str, str]) -> None:
    """The chart as `checkov --framework helm` renders it (default values), with the skips of .checkov.yaml."""
    checkov = tool("checkov")
    tool("helm")
    result = run(
        [checkov, "--config-file", str(CHART / ".checkov.yaml"), "-d", str(CHART), "--framework", "helm", "-o", "json"],
        env=tools_env,
        cwd=REPO,
    )
    summary = _checkov_summary(result)
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0 and summary["passed"] > 100, summary


def test_checkov_passes_on_the_production_manifests(
    tool: Callable[[str], str], helm: str, tools_env: dict[str, str], tmp_path: Path
) -> None:
    """Everything on, and only CKV_K8S_35 skipped: the production values pin the image by digest."""
    checkov = tool("checkov")
    rendered = run(
        [helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(PRODUCTION), "--output-dir", str(tmp_path)]
    )
    assert rendered.returncode == 0, rendered.stderr
    result = run(
        [checkov, "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "--skip-check", "CKV_K8S_35"]
        + ["-o", "json"],
        env=tools_env,
    )
    summary = _checkov_summary(result)
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0 and summary["passed"] > 300, summary


# --- what the objects do -------------------------------------------------------------------------------------------


def test_probes_point_at_ready_and_health(default: list[Doc]) -> None:
    (server,) = pod_spec(one(default, "Deployment"))["containers"]
    port = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert port == {"http": 8000}
    assert server["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_optional_objects_appear_only_when_enabled(default: list[Doc], production: list[Doc]) -> None:
    assert kinds(default) == {"NetworkPolicy", "ServiceAccount", "ConfigMap", "Service", "Deployment", "Pod"}
    assert OPTIONAL_KINDS <= kinds(production)
    assert {d["metadata"]["name"] for d in production if d["kind"] == "CronJob"} == {
        "rel-mloop-monitor",
        "rel-mloop-retrain",
    }
    assert "Secret" not in kinds(default) | kinds(production)  # secrets are only referenced


@pytest.mark.parametrize(
    ("setting", "kind"),
    [
        ("autoscaling.enabled=true", "HorizontalPodAutoscaler"),
        ("ingress.enabled=true", "Ingress"),
        ("podDisruptionBudget.enabled=true", "PodDisruptionBudget"),
        ("metrics.serviceMonitor.enabled=true", "ServiceMonitor"),
        ("metrics.prometheusRule.enabled=true", "PrometheusRule"),
        ("monitor.enabled=true", "CronJob"),
        ("retrain.enabled=true", "CronJob"),
        ("train.enabled=true", "Job"),
        ("persistence.enabled=true", "PersistentVolumeClaim"),
    ],
)
def test_each_option_adds_its_object(
    render: Callable[..., list[Doc]], default: list[Doc], setting: str, kind: str
) -> None:
    docs = render(None, setting)
    assert kinds(docs) - kinds(default) == {kind}


def test_network_policy_and_tests_can_be_turned_off(render: Callable[..., list[Doc]]) -> None:
    docs = render(None, "networkPolicy.enabled=false", "tests.enabled=false", "serviceAccount.create=false")
    assert kinds(docs) == {"ConfigMap", "Service", "Deployment"}
    assert pod_spec(one(docs, "Deployment"))["serviceAccountName"] == "default"


def test_security_context_everywhere(production: list[Doc], render: Callable[..., list[Doc]]) -> None:
    baked = render(PRODUCTION, "bakedProject.enabled=true")  # adds init containers
    pods = [d for d in production + baked if d["kind"] in POD_KINDS]
    assert len(pods) == 10
    for doc in pods:
        spec = pod_spec(doc)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in spec["volumes"]} if "volumes" in spec else {}
        for container in containers(doc):
            sc = container["securityContext"]
            name = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"], name
            if doc["kind"] != "Pod":  # mloop's own containers write only to emptyDirs and the workspace volume
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
                assert writable <= {"/tmp", "/app/project", "/seed"}, name  # noqa: S108 - mount paths
                if container["name"] != "seed-project":
                    assert "emptyDir" in volumes[mounts["/tmp"]], name  # noqa: S108 - a mount path


def test_commands_are_the_mloop_cli(production: list[Doc]) -> None:
    commands = {}
    for doc in production:
        if doc["kind"] in {"Deployment", "CronJob", "Job"}:
            (container,) = pod_spec(doc)["containers"]
            assert container["command"] == ["mloop"]
            commands[container["name"]] = container["args"]
    assert commands == {
        "server": ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"],  # noqa: S104 - in the pod
        "monitor": ["monitor"],
        "retrain": ["retrain", "--if-needed"],
        "train": ["run"],
    }
    # The arguments parse with mloop's own CLI (parsed only: nothing runs).
    group = typer.main.get_command(app)
    for args in commands.values():
        command = group.commands[args[0]]  # type: ignore[attr-defined]
        command.make_context(args[0], list(args[1:]))


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_config_map_is_a_valid_mloop_yaml(render: Callable[..., list[Doc]], values: str) -> None:
    docs = render(VALUES[values])
    data = one(docs, "ConfigMap")["data"]
    config = parse_config(yaml.safe_load(data["mloop.yaml"]), "the chart's mloop.yaml")
    assert config.name
    (server,) = pod_spec(one(docs, "Deployment"))["containers"]
    assert env_of(server)["MLOOP_CONFIG"]["value"] == "/app/project/mloop.yaml"
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == "/app/project/mloop.yaml")
    assert mount["subPath"] == "mloop.yaml" and mount["readOnly"] is True


def test_config_file_and_contract_are_mounted_as_given(render: Callable[..., list[Doc]], helm: str) -> None:
    example = REPO / "examples" / "house-prices" / "mloop.yaml"
    result = run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--set-file",
            f"configYaml={example}",
            "--set",
            "contractYaml=columns: {}",
        ]
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    data = one(docs, "ConfigMap")["data"]
    assert data["mloop.yaml"].strip() == example.read_text(encoding="utf-8").strip()
    assert yaml.safe_load(data["contract.yaml"]) == {"columns": {}}
    (server,) = pod_spec(one(docs, "Deployment"))["containers"]
    assert {m.get("subPath") for m in server["volumeMounts"]} >= {"mloop.yaml", "contract.yaml"}
    # a change of the project files rolls the pods
    before = pod_spec_annotations(render())
    assert pod_spec_annotations(docs) != before


def pod_spec_annotations(docs: list[Doc]) -> str:
    return str(one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/project"])


def test_missing_required_config_is_an_error(helm: str) -> None:
    result = run([helm, "template", RELEASE, str(CHART), "--set", "config.data.target=null"])
    assert result.returncode != 0 and "config.data.target is required" in result.stderr


def test_secrets_are_referenced_never_embedded(production: list[Doc]) -> None:
    values = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    for doc in production:
        if doc["kind"] not in POD_KINDS - {"Pod"}:
            continue
        spec = pod_spec(doc)
        (container,) = spec["containers"]
        assert [e["secretRef"]["name"] for e in container["envFrom"]] == values["envFromSecrets"]
        env = env_of(container)
        ref = env["MLOOP_TRAIN__SEARCH__STORAGE"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "mloop-optuna-db", "key": "url"}
        keys_volume = next(v for v in spec["volumes"] if v["name"] == "api-keys")
        assert keys_volume["secret"]["secretName"] == "mloop-api-keys"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "api-keys")
        assert env["MLOOP_SERVE__API_KEYS_FILE"]["value"] == f"{mount['mountPath']}/api-keys"
    account = one(production, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_gpu_and_scheduling(render: Callable[..., list[Doc]], default: list[Doc], production: list[Doc]) -> None:
    assert "nvidia.com/gpu" not in json.dumps(default)
    docs = render(None, "server.gpu=1", "server.nodeSelector.gpu=yes", "server.tolerations[0].key=nvidia.com/gpu")
    spec = pod_spec(one(docs, "Deployment"))
    (server,) = spec["containers"]
    assert (
        server["resources"]["limits"]["nvidia.com/gpu"] == 1 and server["resources"]["requests"]["nvidia.com/gpu"] == 1
    )
    assert spec["nodeSelector"] == {"gpu": "yes"} and spec["tolerations"] == [{"key": "nvidia.com/gpu"}]
    gpus = {}
    for doc in production:
        if doc["kind"] in {"Deployment", "CronJob", "Job"}:
            spec = pod_spec(doc)
            (container,) = spec["containers"]
            gpus[container["name"]] = container["resources"]["limits"].get("nvidia.com/gpu", 0)
            if gpus[container["name"]]:
                assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
            else:
                assert "tolerations" not in spec
    assert gpus == {"server": 0, "monitor": 0, "retrain": 1, "train": 1}


def test_autoscaling_metrics(render: Callable[..., list[Doc]], production: list[Doc]) -> None:
    hpa = one(production, "HorizontalPodAutoscaler")
    assert "replicas" not in one(production, "Deployment")["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rel-mloop"}
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "mloop_requests_per_second"
    cpu_only = one(render(None, "autoscaling.enabled=true"), "HorizontalPodAutoscaler")
    assert [m["type"] for m in cpu_only["spec"]["metrics"]] == ["Resource"]


def test_selectors_match_their_pods(production: list[Doc]) -> None:
    server = pod_labels(one(production, "Deployment"))
    jobs = [pod_labels(d) for d in production if d["kind"] in {"CronJob", "Job", "Pod"}]
    service = one(production, "Service")
    assert matches({"matchLabels": service["spec"]["selector"]}, server)
    assert all(not matches({"matchLabels": service["spec"]["selector"]}, labels) for labels in jobs)
    assert matches(one(production, "PodDisruptionBudget")["spec"]["selector"], server)
    monitor = one(production, "ServiceMonitor")
    assert matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["port"] == "http" and monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # job="mloop", as MloopNoChampion's up{job="mloop"} expects
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "mloop"
    server_policy = one(production, "NetworkPolicy", "-server")
    jobs_policy = one(production, "NetworkPolicy", "-jobs")
    assert matches(server_policy["spec"]["podSelector"], server)
    assert not matches(jobs_policy["spec"]["podSelector"], server)
    assert all(matches(jobs_policy["spec"]["podSelector"], labels) for labels in jobs) and len(jobs) == 4
    assert jobs_policy["spec"]["ingress"] == []
    (api,) = server_policy["spec"]["ingress"]
    assert api["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert any(
        matches(peer.get("podSelector", {"matchLabels": {"x": "y"}}), pod_labels(one(production, "Pod")))
        for peer in api["from"]
    )


def test_prometheus_rule_is_deploy_prometheus_alerts(
    production: list[Doc], tool: Callable[[str], str], tmp_path: Path
) -> None:
    source = REPO / "deploy" / "prometheus" / "alerts.yml"
    copy = CHART / "files" / "alerts.yml"
    assert copy.read_bytes() == source.read_bytes(), f"the chart's copy is stale: cp {source} {copy}"
    rule = one(production, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(source.read_text(encoding="utf-8"))["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = tmp_path / "alerts.yml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = run([tool("promtool"), "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workspace_is_shared_by_the_server_and_the_jobs(production: list[Doc], default: list[Doc]) -> None:
    claim = one(production, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for doc in production:
        if doc["kind"] in {"Deployment", "CronJob", "Job"}:
            volumes = {v["name"]: v for v in pod_spec(doc)["volumes"]}
            assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    volumes = {v["name"]: v for v in pod_spec(one(default, "Deployment"))["volumes"]}
    assert volumes["workspace"] == {"name": "workspace", "emptyDir": {}}


def test_baked_project_is_copied_into_the_workspace(render: Callable[..., list[Doc]]) -> None:
    docs = render(None, "bakedProject.enabled=true", "monitor.enabled=true")
    assert "ConfigMap" not in kinds(docs)
    for doc in docs:
        if doc["kind"] in {"Deployment", "CronJob"}:
            spec = pod_spec(doc)
            (seed,) = spec["initContainers"]
            assert seed["command"] == ["cp", "-a", "/app/project/.", "/seed/"]
            assert seed["volumeMounts"] == [{"name": "workspace", "mountPath": "/seed"}]
            assert "project-files" not in {v["name"] for v in spec["volumes"]}


def test_image_digest_wins_over_the_tag(
    render: Callable[..., list[Doc]], default: list[Doc], production: list[Doc]
) -> None:
    assert pod_spec(one(default, "Deployment"))["containers"][0]["image"] == "mloop:0.1.0"
    image = pod_spec(one(production, "Deployment"))["containers"][0]["image"]
    assert re.fullmatch(r".+/mloop@sha256:[0-9a-f]{64}", image), image
    docs = render(None, "image.repository=r.example/mloop", "image.tag=1.2.3")
    assert pod_spec(one(docs, "Deployment"))["containers"][0]["image"] == "r.example/mloop:1.2.3"


# Values documented as one row although they are maps: mloop.yaml itself, security contexts, resources, probes.
OPAQUE_VALUES = {
    "config",
    "podSecurityContext",
    "securityContext",
    "server.resources",
    "server.strategy",
    "server.startupProbe",
    "server.livenessProbe",
    "server.readinessProbe",
    "monitor.resources",
    "retrain.resources",
    "train.resources",
}


def value_keys(values: Any, path: str = "") -> Iterator[str]:
    if path in OPAQUE_VALUES or not isinstance(values, dict) or not values:
        yield path
        return
    for key, value in values.items():
        yield from value_keys(value, f"{path}.{key}" if path else key)


def test_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    keys = set(value_keys(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))))
    assert keys - table == set(), "values missing from the README's Values table"
    assert table - keys == set(), "README rows for values that do not exist"
    production = set(value_keys(yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))))
    unknown = {k for k in production if not any(k == v or k.startswith(v + ".") for v in keys | OPAQUE_VALUES)}
    assert unknown == set(), "values-production.yaml sets values the chart does not have"
