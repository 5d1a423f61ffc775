"""The Helm chart deploy/helm/mloop: rendered with `helm template` for the default and the production values
(and production with the streaming consumer of values-streaming.yaml), every object validated by
`kubernetes-validate --strict` for each Kubernetes version the chart claims (Prometheus Operator objects and
KEDA's ScaledObject by tests/deploy/crd_validate.py), `helm lint` and checkov clean, and the rendered objects
doing what the chart promises.

The tools come from `bash scripts/deploy-tools.sh` (.tools/); without them these tests skip.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mloop.cli.main import app
from mloop.config import parse_config

from .conftest import REPO, TOOLS_VENV_BIN
from .exported_metrics import unknown_references

CHART = REPO / "deploy" / "helm" / "mloop"
PRODUCTION = CHART / "values-production.yaml"
STREAMING = CHART / "values-streaming.yaml"
VALUES: dict[str, tuple[Path, ...]] = {
    "default": (),
    "production": (PRODUCTION,),
    "streaming": (PRODUCTION, STREAMING),
}
NAMESPACE = "mloop"
RELEASE = "rel"
SERVER = f"{RELEASE}-mloop"  # the API's Deployment, Service, ServiceMonitor
STREAM = f"{RELEASE}-mloop-stream"  # the stream consumer's Deployment, Service, ServiceMonitor, ScaledObject
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}
# A PostgreSQL prediction log from an existing Secret: what more than one server or consumer pod needs.
PG_LOG = "predictionLog.existingSecret=predictions-db"
PREDICTIONS_URL = "MLOOP_MONITOR__PREDICTIONS_URL"
SQLITE_REFUSED = "with the SQLite prediction log"
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
    """`render(values_file(s), "key=value", ..., kube_version=None)` -> the objects `helm template` makes."""

    def _render(values: Path | Sequence[Path] | None = None, *sets: str, kube_version: str | None = None) -> list[Doc]:
        args = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for path in [values] if isinstance(values, Path) else values or ():
            args += ["-f", str(path)]
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
    for path in VALUES[values]:
        args += ["-f", str(path)]
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
    assert no_schema <= CRD_KINDS, output  # only the Prometheus Operator's and KEDA's kinds lack a built-in schema
    assert len(passed) == len([d for d in docs if d["kind"] not in CRD_KINDS]), output


def test_the_chart_claims_only_versions_it_is_validated_for(helm: str) -> None:
    skip_without_schemas()
    assert VERSIONS[0] == chart_min_version(), f"kubernetes-validate ships no schema for {chart_min_version()}"
    below = _version_key(chart_min_version())[:1] + (_version_key(chart_min_version())[1] - 1, 0)
    result = run([helm, "template", RELEASE, str(CHART), "--kube-version", ".".join(map(str, below))])
    assert result.returncode != 0 and "kubeVersion" in result.stderr, result.stderr


def validate_custom_resources(tools_python: str, docs: list[Doc], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return run([tools_python, str(Path(__file__).with_name("crd_validate.py")), str(manifest)])


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_custom_resources_validate(
    tools_python: str, render: Callable[..., list[Doc]], tmp_path: Path, values: str
) -> None:
    """ServiceMonitors and the PrometheusRule against the operator's models, the ScaledObject against KEDA's CRD."""
    docs = render(VALUES[values], "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
    expected = len([d for d in docs if d["kind"] in CRD_KINDS])
    assert expected == (4 if values == "streaming" else 2)  # + the consumer's ServiceMonitor and its ScaledObject
    result = validate_custom_resources(tools_python, docs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"checked {expected} custom resources, 0 problems" in result.stdout


def test_the_scaled_object_check_bites(tools_python: str, render: Callable[..., list[Doc]], tmp_path: Path) -> None:
    """A misspelt field, a wrong type and trigger metadata KEDA would silently ignore are all reported."""
    scaled = one(render(VALUES["streaming"]), "ScaledObject")
    scaled["spec"]["pollingIntervall"] = 15
    scaled["spec"]["cooldownPeriod"] = "300"
    scaled["spec"]["triggers"][0]["metadata"]["lagcount"] = scaled["spec"]["triggers"][0]["metadata"].pop("lagCount")
    result = validate_custom_resources(tools_python, [scaled], tmp_path)
    assert result.returncode == 1, result.stdout
    assert "'pollingIntervall' was unexpected" in result.stdout
    assert "spec.cooldownPeriod: '300' is not of type 'integer'" in result.stdout
    assert "metadata.lagcount: KEDA's redis-streams scaler reads no lagcount" in result.stdout
    assert "checked 1 custom resources, 3 problems" in result.stdout


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


@pytest.mark.parametrize("values", ["production", "streaming"])
def test_checkov_passes_on_the_production_manifests(
    tool: Callable[[str], str], helm: str, tools_env: dict[str, str], tmp_path: Path, values: str
) -> None:
    """Everything on, and only CKV_K8S_35 skipped: the production values pin the image by digest."""
    checkov = tool("checkov")
    files = [arg for path in VALUES[values] for arg in ("-f", str(path))]
    rendered = run([helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, *files, "--output-dir", str(tmp_path)])
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
        (f"autoscaling.enabled=true,{PG_LOG}", "HorizontalPodAutoscaler"),
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


def image_user() -> tuple[int, int]:
    """The numeric uid and gid of deploy/docker/Dockerfile's USER line."""
    (user,) = re.findall(r"^USER (\d+):(\d+)$", (REPO / "deploy/docker/Dockerfile").read_text(encoding="utf-8"), re.M)
    return int(user[0]), int(user[1])


def test_security_context_everywhere(production: list[Doc], render: Callable[..., list[Doc]]) -> None:
    baked = render(PRODUCTION, "bakedProject.enabled=true")  # adds init containers
    pods = [d for d in production + baked if d["kind"] in POD_KINDS]
    uid, gid = image_user()
    assert len(pods) == 10
    for doc in pods:
        spec = pod_spec(doc)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # The image's own user, so files it owns (the baked project) and the volumes (fsGroup) are writable.
        pod_ids = [spec["securityContext"][k] for k in ("runAsUser", "runAsGroup", "fsGroup")]
        assert pod_ids == [uid, gid, gid], doc["metadata"]["name"]
        volumes = {v["name"]: v for v in spec["volumes"]} if "volumes" in spec else {}
        for container in containers(doc):
            sc = container["securityContext"]
            name = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, name
            assert (sc["runAsUser"], sc["runAsGroup"]) == (uid, gid), name
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
    (server,) = pod_spec(one(docs, "Deployment", SERVER))["containers"]
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
    return str(one(docs, "Deployment", SERVER)["spec"]["template"]["metadata"]["annotations"]["checksum/project"])


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


# --- the prediction log: PostgreSQL for several pods, SQLite refused there -------------------------------------


def mloop_containers(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """Every container running mloop (servers, consumers, job pods), named kind/object/container."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "CronJob", "Job"}:
            for container in pod_spec(doc)["containers"]:
                yield f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}", container


def refusal(helm: str, values: Sequence[Path], *sets: str) -> str:
    """The stderr of a `helm template` that must fail."""
    args = [helm, "template", RELEASE, str(CHART), *[a for p in values for a in ("-f", str(p))]]
    result = run([*args, *[a for s in sets for a in ("--set", s)]])
    assert result.returncode != 0, f"rendered although it should not: {sets}"
    return result.stderr


@pytest.mark.parametrize("values", ["production", "streaming"])
def test_production_writes_the_postgresql_prediction_log(render: Callable[..., list[Doc]], values: str) -> None:
    """Several server (and consumer) pods on several nodes: every pod reads the log's URL from an existing Secret."""
    docs = render(VALUES[values])
    settings = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    secret = settings["predictionLog"]
    assert secret["existingSecret"] and settings["autoscaling"]["maxReplicas"] > 1
    named = dict(mloop_containers(docs))
    assert {name.split("/")[-1] for name in named} >= {"server", "monitor", "retrain", "train"}
    assert ("stream" in {name.split("/")[-1] for name in named}) == (values == "streaming")
    for name, container in named.items():
        entry = env_of(container)[PREDICTIONS_URL]
        assert entry == {
            "name": PREDICTIONS_URL,
            "valueFrom": {"secretKeyRef": {"name": secret["existingSecret"], "key": secret["key"]}},
        }, name
    assert "Secret" not in kinds(docs)  # referenced, never made by the chart
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["mloop.yaml"])
    assert "predictions_url" not in (config.get("monitor") or {})  # no URL, let alone a password, in the ConfigMap
    # The NetworkPolicy lets the pods reach PostgreSQL.
    egress = one(docs, "NetworkPolicy", "-server")["spec"]["egress"]
    assert any(port.get("port") == 5432 for rule in egress for port in rule.get("ports", []))


@pytest.mark.parametrize(
    ("values", "sets", "message"),
    [
        ((), ("server.replicaCount=2",), "server.replicaCount is 2"),
        ((), ("autoscaling.enabled=true",), "autoscaling.maxReplicas is 10"),
        ((), ("autoscaling.enabled=true", "autoscaling.maxReplicas=2"), "autoscaling.maxReplicas is 2"),
        ((PRODUCTION,), ("predictionLog.existingSecret=",), "autoscaling.maxReplicas is 8"),
        ((), ("stream.enabled=true", "stream.replicas=3"), "stream.replicas is 3"),
        ((), ("stream.enabled=true", "stream.keda.enabled=true"), "stream.keda.maxReplicaCount is 10"),
    ],
    ids=["replicas", "hpa-default", "hpa-2", "production-without-postgres", "stream-replicas", "stream-keda"],
)
def test_a_sqlite_prediction_log_with_several_pods_is_refused(
    helm: str, values: tuple[Path, ...], sets: tuple[str, ...], message: str
) -> None:
    stderr = refusal(helm, values, *sets)
    assert f"{message} {SQLITE_REFUSED}" in stderr, stderr
    assert "safe only for writers on one node" in stderr and "predictionLog.existingSecret" in stderr, stderr


def test_a_single_pod_may_keep_the_sqlite_prediction_log(render: Callable[..., list[Doc]], default: list[Doc]) -> None:
    assert one(default, "Deployment")["spec"]["replicas"] == 1
    for docs in (default, render(None, "stream.enabled=true", "persistence.enabled=true", "monitor.enabled=true")):
        for name, container in mloop_containers(docs):
            assert PREDICTIONS_URL not in env_of(container), name  # the workspace's .mloop/predictions.db
    # One pod under an HPA (maxReplicas 1) and one KEDA-scaled consumer are still one writer each.
    docs = render(
        None,
        "autoscaling.enabled=true",
        "autoscaling.minReplicas=1",
        "autoscaling.maxReplicas=1",
        "stream.enabled=true",
        "stream.keda.enabled=true",
        "stream.keda.maxReplicaCount=1",
    )
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 1


@pytest.mark.parametrize(
    "sets",
    [
        (PG_LOG, "predictionLog.key=uri"),
        ("secretEnv[0].name=MLOOP_MONITOR__PREDICTIONS_URL", "secretEnv[0].secretName=db", "secretEnv[0].key=url"),
        ("config.monitor.predictions_url=postgresql://mloop@db.example:5432/predictions",),
    ],
    ids=["predictionLog", "secretEnv", "config-without-password"],
)
def test_a_postgresql_prediction_log_allows_several_pods(
    render: Callable[..., list[Doc]], sets: tuple[str, ...]
) -> None:
    docs = render(None, "server.replicaCount=3", "stream.enabled=true", "stream.replicas=2", *sets)
    assert one(docs, "Deployment", SERVER)["spec"]["replicas"] == 3
    if sets[0] == PG_LOG:
        (server,) = pod_spec(one(docs, "Deployment", SERVER))["containers"]
        ref = env_of(server)[PREDICTIONS_URL]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "predictions-db", "key": "uri"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("config.monitor.predictions_url=postgresql://mloop:hunter2@db:5432/p",),
            "monitor.predictions_url in mloop.yaml carries a password in plain text",
        ),
        (
            ("env[0].name=MLOOP_MONITOR__PREDICTIONS_URL", "env[0].value=postgresql://mloop@db/p?password=hunter2"),
            "env MLOOP_MONITOR__PREDICTIONS_URL carries a password in plain text",
        ),
        (("config.monitor.predictions_url=sqlite:///log.db",), "is not a PostgreSQL URL"),
        (
            (
                PG_LOG,
                "secretEnv[0].name=MLOOP_MONITOR__PREDICTIONS_URL",
                "secretEnv[0].secretName=a",
                "secretEnv[0].key=b",
            ),
            "MLOOP_MONITOR__PREDICTIONS_URL is set more than once (predictionLog.existingSecret, secretEnv)",
        ),
    ],
    ids=["password-in-config", "password-in-env", "not-postgresql", "twice"],
)
def test_a_prediction_log_url_the_chart_cannot_use_is_refused(helm: str, sets: tuple[str, ...], message: str) -> None:
    stderr = refusal(helm, (), *sets)
    assert message in stderr, stderr
    assert "hunter2" not in stderr  # the message never repeats the password


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
    cpu_only = one(render(None, "autoscaling.enabled=true", PG_LOG), "HorizontalPodAutoscaler")
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


# --- the stream consumer (`mloop stream`) ----------------------------------------------------------------------


def stream_objects(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "stream"]


def stream_container(docs: list[Doc]) -> Doc:
    (container,) = pod_spec(one(docs, "Deployment", STREAM))["containers"]
    return container


@pytest.fixture(scope="session")
def streaming(render: Callable[..., list[Doc]]) -> list[Doc]:
    """values-production.yaml with values-streaming.yaml: the consumer on Redis, scaled by KEDA, scraped."""
    return render(VALUES["streaming"])


def test_stream_is_off_unless_enabled(
    render: Callable[..., list[Doc]], default: list[Doc], production: list[Doc]
) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["stream"]
    assert values["enabled"] is False and values["keda"]["enabled"] is False
    keda_alone = render(None, "stream.keda.enabled=true", "metrics.serviceMonitor.enabled=true")
    for docs in (default, production, keda_alone):
        assert stream_objects(docs) == []
        assert "ScaledObject" not in kinds(docs)
        assert STREAM not in json.dumps(docs)


def test_stream_adds_only_its_own_objects(render: Callable[..., list[Doc]], default: list[Doc]) -> None:
    docs = render(None, "stream.enabled=true")
    names = sorted((d["kind"], d["metadata"]["name"]) for d in stream_objects(docs))
    assert names == [("Deployment", STREAM), ("NetworkPolicy", STREAM), ("Service", STREAM)]
    assert [d for d in docs if d not in stream_objects(docs)] == default  # the server's objects are as they were
    scaled = render(
        None, "stream.enabled=true", "stream.keda.enabled=true", "metrics.serviceMonitor.enabled=true", PG_LOG
    )
    added = {(d["kind"], d["metadata"]["name"]) for d in stream_objects(scaled)} - set(names)
    assert added == {("ScaledObject", STREAM), ("ServiceMonitor", STREAM)}


def test_stream_args_carry_the_values(render: Callable[..., list[Doc]]) -> None:
    docs = render(
        None,
        "stream.enabled=true",
        "stream.source=redis://r:6379/2?stream=in",
        "stream.sink=kafka://k:9092?topic=out",
        "stream.group=scorers",
        "stream.deadLetter=redis://r:6379/2?stream=bad",
        "stream.labels=nats://n:4222?stream=LABELS&subject=labels",
        "stream.batchSize=200",
        "stream.lingerMs=20",
        "stream.metrics.port=9200",
        "stream.extraArgs={--idle-exit,600}",
    )
    container = stream_container(docs)
    assert container["command"] == ["mloop"]
    assert container["args"] == [
        "stream",
        "--source",
        "redis://r:6379/2?stream=in",
        "--sink",
        "kafka://k:9092?topic=out",
        "--group",
        "scorers",
        "--consumer",
        "$(POD_NAME)",
        "--dead-letter",
        "redis://r:6379/2?stream=bad",
        "--labels",
        "nats://n:4222?stream=LABELS&subject=labels",
        "--batch-size",
        "200",
        "--linger-ms",
        "20",
        "--metrics-host",
        "0.0.0.0",  # noqa: S104 - in the pod, for Prometheus
        "--metrics-port",
        "9200",
        "--idle-exit",
        "600",
    ]
    # Each pod is its own consumer of the group: Kubernetes expands $(POD_NAME) from this variable.
    assert env_of(container)["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # The arguments parse with mloop's own CLI (parsed only: nothing runs).
    group = typer.main.get_command(app)
    group.commands["stream"].make_context("stream", list(container["args"][1:]))  # type: ignore[attr-defined]


def test_stream_defaults(render: Callable[..., list[Doc]]) -> None:
    args = stream_container(render(None, "stream.enabled=true"))["args"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--group"] == SERVER  # the release's full name
    assert "--dead-letter" not in options and "--labels" not in options  # the consumer's defaults
    assert options["--batch-size"] == "500" and options["--linger-ms"] == "5" and options["--metrics-port"] == "9109"
    deployment = one(render(None, "stream.enabled=true", "stream.replicas=3", PG_LOG), "Deployment", STREAM)
    assert deployment["spec"]["replicas"] == 3


def test_stream_probes_and_metrics_port(render: Callable[..., list[Doc]], helm: str) -> None:
    docs = render(None, "stream.enabled=true", "stream.metrics.port=9300")
    container = stream_container(docs)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9300, "protocol": "TCP"}]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    service = one(docs, "Service", STREAM)
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9300, "targetPort": "metrics", "protocol": "TCP"}]
    consumer = pod_labels(one(docs, "Deployment", STREAM))
    server = pod_labels(one(docs, "Deployment", SERVER))
    assert matches({"matchLabels": service["spec"]["selector"]}, consumer)
    assert not matches({"matchLabels": service["spec"]["selector"]}, server)
    # The API's Service never sends requests to a consumer.
    assert not matches({"matchLabels": one(docs, "Service", SERVER)["spec"]["selector"]}, consumer)
    result = run(
        [helm, "template", RELEASE, str(CHART), "--set", "stream.enabled=true", "--set", "stream.metrics.port=0"]
    )
    assert result.returncode != 0 and "stream.metrics.port is required" in result.stderr


def test_stream_runs_like_the_server(streaming: list[Doc]) -> None:
    """The same image, project files, environment, secrets, workspace and prediction log as the API's pods."""
    server_spec, stream_spec = (
        pod_spec(one(streaming, "Deployment", SERVER)),
        pod_spec(one(streaming, "Deployment", STREAM)),
    )
    (server,) = server_spec["containers"]
    stream = stream_container(streaming)
    for key in ("image", "imagePullPolicy", "command", "envFrom", "volumeMounts", "securityContext"):
        assert stream[key] == server[key], key
    assert {k: v for k, v in env_of(stream).items() if k != "POD_NAME"} == env_of(server)
    for key in ("volumes", "serviceAccountName", "automountServiceAccountToken", "securityContext"):
        assert stream_spec[key] == server_spec[key], key
    annotations = one(streaming, "Deployment", STREAM)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/project"] == pod_spec_annotations(streaming)  # rolls with the project files
    assert "nvidia.com/gpu" not in stream["resources"]["limits"]


def test_stream_metrics_are_scraped_as_their_own_job(streaming: list[Doc]) -> None:
    monitor = one(streaming, "ServiceMonitor", STREAM)
    service = one(streaming, "Service", STREAM)
    assert matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert not matches(one(streaming, "ServiceMonitor", SERVER)["spec"]["selector"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    # job="mloop-stream", as deploy/compose's Prometheus names it; the API's alerts (job="mloop") leave it out.
    assert endpoint["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": "mloop-stream"}]
    values = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))["metrics"]["serviceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == values["labels"]["release"]
    assert endpoint["interval"] == values["interval"]


def test_keda_scales_the_consumer_deployment(streaming: list[Doc]) -> None:
    values = yaml.safe_load(STREAMING.read_text(encoding="utf-8"))["stream"]
    scaled = one(streaming, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["metadata"]["namespace"] == NAMESPACE
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": STREAM}
    assert "replicas" not in one(streaming, "Deployment", STREAM)["spec"]  # KEDA's HPA owns them
    assert scaled["spec"]["minReplicaCount"] == values["keda"]["minReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] == values["keda"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    args = stream_container(streaming)["args"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"] == {
        "address": "redis-master.redis.svc.cluster.local:6379",  # of --source
        "stream": "house-sales",
        "databaseIndex": "0",
        "enableTLS": "false",
        "consumerGroup": options["--group"],  # the group the consumers read as
        "lagCount": str(values["keda"]["lagPerReplica"]),
        "activationLagCount": "0",
    }
    assert options["--source"] == values["source"]
    assert "HorizontalPodAutoscaler" not in {d["kind"] for d in stream_objects(streaming)}


def test_keda_redis_settings_come_from_the_source_unless_set(render: Callable[..., list[Doc]], helm: str) -> None:
    keda = ("stream.enabled=true", "stream.keda.enabled=true", PG_LOG)

    def metadata(*sets: str) -> dict[str, str]:
        (trigger,) = one(render(None, *keda, *sets), "ScaledObject")["spec"]["triggers"]
        assert trigger["type"] == "redis-streams"
        return dict(trigger["metadata"])

    tls = metadata("stream.source=rediss://:pw@r.example:6380/3?maxlen=5&stream=ev")
    assert (tls["address"], tls["stream"], tls["databaseIndex"], tls["enableTLS"]) == (
        "r.example:6380",
        "ev",
        "3",
        "true",
    )
    assert "pw" not in json.dumps(tls)
    assert metadata("stream.source=redis://r?stream=ev")["address"] == "r:6379"  # Redis's port by default
    given = metadata(
        "stream.source=$(MLOOP_STREAM_SOURCE)",
        "stream.keda.redis.address=redis.example:7000",
        "stream.keda.redis.stream=orders",
        "stream.keda.redis.databaseIndex=4",
        "stream.keda.redis.enableTLS=true",
        "stream.keda.authenticationRef=redis-auth",
    )
    assert given | {"consumerGroup": "x"} == {
        "address": "redis.example:7000",
        "stream": "orders",
        "databaseIndex": "4",
        "enableTLS": "true",
        "consumerGroup": "x",
        "lagCount": "1000",
        "activationLagCount": "0",
    }
    (trigger,) = one(render(None, *keda, "stream.keda.authenticationRef=redis-auth"), "ScaledObject")["spec"][
        "triggers"
    ]
    assert trigger["authenticationRef"] == {"name": "redis-auth"}
    # A source KEDA's Redis trigger cannot read: the chart says what to set.
    sets = [a for s in (*keda, "stream.source=kafka://k:9092?topic=events") for a in ("--set", s)]
    result = run([helm, "template", RELEASE, str(CHART), *sets])
    assert result.returncode != 0 and "stream.keda.redis.address" in result.stderr and "prometheus" in result.stderr


def test_keda_prometheus_trigger_reads_the_exported_lag(
    render: Callable[..., list[Doc]], helm: str, exported: dict[str, set[str]]
) -> None:
    docs = render(
        None,
        "stream.enabled=true",
        "stream.source=kafka://k:9092?topic=events",
        "stream.keda.enabled=true",
        "stream.keda.trigger=prometheus",
        "stream.keda.lagPerReplica=5000",
        PG_LOG,
    )
    (trigger,) = one(docs, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert meta["query"] == f'max(mloop_stream_lag{{namespace="{NAMESPACE}",service="{STREAM}"}})'
    # namespace and service are the labels the Prometheus Operator gives every target of a ServiceMonitor.
    on_kubernetes = {name: labels | {"namespace", "service"} for name, labels in exported.items()}
    assert unknown_references(meta["query"], on_kubernetes) == []
    assert meta["threshold"] == "5000" and meta["serverAddress"].startswith("http")
    for bad, message in [
        ("stream.keda.minReplicaCount=0", "minReplicaCount >= 1"),
        ("stream.keda.trigger=cpu", 'stream.keda.trigger "cpu"'),
    ]:
        sets = ["stream.enabled=true", "stream.keda.enabled=true", "stream.keda.trigger=prometheus", PG_LOG, bad]
        result = run([helm, "template", RELEASE, str(CHART), *[a for s in sets for a in ("--set", s)]])
        assert result.returncode != 0 and message in result.stderr, (bad, result.stderr)


def test_stream_network_policy(streaming: list[Doc]) -> None:
    """Only the metrics port is open, to Prometheus; egress reaches the broker besides mloop's own rules."""
    policy = one(streaming, "NetworkPolicy", STREAM)
    consumer = pod_labels(one(streaming, "Deployment", STREAM))
    assert matches(policy["spec"]["podSelector"], consumer)
    for other in ("-server", "-jobs"):
        assert not matches(one(streaming, "NetworkPolicy", other)["spec"]["podSelector"], consumer), other
    values = yaml.safe_load(STREAMING.read_text(encoding="utf-8"))["stream"]["networkPolicy"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress == {"ports": [{"port": 9109, "protocol": "TCP"}], "from": values["metricsClients"]}
    egress = policy["spec"]["egress"]
    server_egress = one(streaming, "NetworkPolicy", "-server")["spec"]["egress"]
    assert egress == server_egress + values["egress"]
    assert any(port["port"] == 6379 for rule in egress for port in rule.get("ports", []))


def test_streaming_example_leaves_production_as_it_is(production: list[Doc], streaming: list[Doc]) -> None:
    assert [d for d in streaming if d not in stream_objects(streaming)] == production
    assert {d["kind"] for d in stream_objects(streaming)} == {
        "Deployment",
        "Service",
        "NetworkPolicy",
        "ServiceMonitor",
        "ScaledObject",
    }


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
    "stream.resources",
    "stream.startupProbe",
    "stream.livenessProbe",
    "stream.readinessProbe",
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
    for example in (PRODUCTION, STREAMING):
        given = set(value_keys(yaml.safe_load(example.read_text(encoding="utf-8"))))
        unknown = {k for k in given if not any(k == v or k.startswith(v + ".") for v in keys | OPAQUE_VALUES)}
        assert unknown == set(), f"{example.name} sets values the chart does not have"
