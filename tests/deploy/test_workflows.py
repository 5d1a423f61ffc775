""".github/workflows: actionlint passes, the workflows are wired as docs/deploy.md says, and the training
workflow's own steps run for real against a small project (so its commands, outputs and job summary work).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.deploy.conftest import find_tool
from tests.helpers.cli import mloop, ok, run_command

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
CHART = REPO / "deploy" / "helm" / "mloop"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    found: dict[str, Any] = workflow.get("on", workflow.get(True))
    return found


def steps_of(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return found


def all_steps() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, job_name, step)
        for path in FILES
        for job_name, job in load(path.name)["jobs"].items()
        for step in job.get("steps", [])
    ]


# --- actionlint ----------------------------------------------------------------------------------------


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in FILES} == {"ci.yml", "train.yml", "deploy.yml"}


def test_actionlint_passes(tool: Callable[[str], str]) -> None:
    args = [tool("actionlint"), "-no-color"]
    shellcheck = find_tool("shellcheck")
    # With shellcheck (Debian package) actionlint also checks every `run:` script; without it, it skips them.
    args.append(f"-shellcheck={shellcheck or ''}")
    done = subprocess.run([*args, *map(str, FILES)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_scripts_pass_shellcheck_through_actionlint(tool: Callable[[str], str]) -> None:
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian package `shellcheck`)")
    done = subprocess.run(
        [tool("actionlint"), "-no-color", f"-shellcheck={shellcheck}", *map(str, FILES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- hygiene of every workflow -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_minimal(path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] == {"contents": "read"}, "the workflow default is read-only"
    allowed_writes = {"packages", "actions"}
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions", {})
        assert permissions != "write-all" and isinstance(permissions, dict), name
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= allowed_writes, f"{path.name}/{name} asks for {writes}"


def test_actions_are_pinned_to_a_version() -> None:
    used = [(f, j, s["uses"]) for f, j, s in all_steps() if "uses" in s]
    assert used
    for file, job, action in used:
        assert PINNED.match(action), f"{file}/{job}: {action} is not pinned to an exact version (vX.Y.Z or a SHA)"


def test_secrets_and_event_data_never_reach_scripts_inline() -> None:
    """Secrets and user-controlled values go through `env:`, never `${{ }}` inside a script (script injection)."""
    for file, job, step in all_steps():
        script = step.get("run", "")
        for expression in re.findall(r"\$\{\{(.*?)\}\}", script):
            assert "secrets." not in expression, f"{file}/{job}: secret inline in a script"
            assert "inputs." not in expression and "github.event" not in expression, f"{file}/{job}: {expression}"
    text = "\n".join(p.read_text(encoding="utf-8") for p in FILES)
    assert not re.search(r"(password|token|secret)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{16,}", text, re.IGNORECASE)
    assert not re.search(r"gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}", text)


# --- ci.yml ----------------------------------------------------------------------------------------------


def test_ci_lints_types_and_tests() -> None:
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(ci))
    scripts = {job: " ".join(s.get("run", "") for s in steps_of(ci, job)) for job in ci["jobs"]}
    assert "make lint" in scripts["lint"], "make lint: ruff, mypy (types), import-linter, deployment linters"
    assert ".ci/run" in scripts["test"]
    assert (REPO / ".ci" / "run").is_file()
    assert "lint-deploy" in (REPO / "Makefile").read_text(encoding="utf-8"), "make lint runs the deployment linters"
    for job in ci["jobs"].values():
        assert job["timeout-minutes"] <= 90


# --- train.yml -------------------------------------------------------------------------------------------


def test_train_runs_on_changes_to_data_or_config() -> None:
    on = triggers(load("train.yml"))
    paths = on["push"]["paths"]
    assert "data/**" in paths and "**/mloop.yaml" in paths and "**/contract.yaml" in paths
    assert "workflow_dispatch" in on


def test_train_steps_are_validate_train_register_gate_in_order() -> None:
    scripts = [s.get("run", "") for s in steps_of(load("train.yml"), "train")]
    order = ["mloop ingest", "mloop validate", "mloop train", "mloop register", "mloop promote"]
    positions = [next(i for i, script in enumerate(scripts) if command in script) for command in order]
    assert positions == sorted(positions), positions


def test_the_gate_decision_goes_to_the_job_summary() -> None:
    steps = steps_of(load("train.yml"), "train")
    gate = next(i for i, s in enumerate(steps) if "mloop promote" in s.get("run", ""))
    summary = [s for s in steps[gate:] if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert summary and summary[0]["if"] == "always()", "the summary is written even when a step failed"
    assert "gate.json" in summary[0]["run"]


def test_a_promotion_dispatches_deploy_with_the_version() -> None:
    train = load("train.yml")
    deploy_job = train["jobs"]["deploy"]
    assert deploy_job["needs"] == "train"
    assert deploy_job["if"] == "needs.train.outputs.promoted == 'true'"
    script = " ".join(s["run"] for s in deploy_job["steps"])
    assert "gh workflow run deploy.yml" in script and "model_version=" in script
    inputs = triggers(load("deploy.yml"))["workflow_dispatch"]["inputs"]
    assert inputs["model_version"]["required"] is True


# --- deploy.yml ------------------------------------------------------------------------------------------


def test_deploy_is_triggered_by_a_promotion() -> None:
    on = triggers(load("deploy.yml"))
    assert "model_version" in on["workflow_dispatch"]["inputs"]
    assert on["repository_dispatch"]["types"] == ["model-promoted"]
    assert load("deploy.yml")["concurrency"]["cancel-in-progress"] is False


def test_deploy_builds_and_pushes_the_image_of_deploy_docker() -> None:
    build = next(s for s in steps_of(load("deploy.yml"), "image") if "build-push-action" in s.get("uses", ""))
    assert build["with"]["file"] == "deploy/docker/Dockerfile" and build["with"]["context"] == "."
    assert build["with"]["push"] is True
    assert (REPO / build["with"]["file"]).is_file()


def test_deploy_upgrades_the_chart_and_rolls_back_on_failed_readiness() -> None:
    deploy = load("deploy.yml")
    steps = steps_of(deploy, "helm")
    upgrade = next(s for s in steps if "helm upgrade" in s.get("run", ""))
    script = upgrade["run"]
    assert "--install" in script and "--wait" in script and "deploy/helm/mloop" in script
    assert "image.repository=" in script and "image.tag=" in script
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert {"repository", "tag", "digest"} <= set(values["image"]), "the chart takes the values the workflow sets"
    assert "podAnnotations" in values["server"]
    default_values = deploy["jobs"]["helm"]["env"]["VALUES"]
    assert (REPO / re.findall(r"'([^']+)'", default_values)[0]).is_file()
    verify = next(s for s in steps if s.get("id") == "verify")
    assert "helm test" in verify["run"] and "/ready" in verify["run"]
    rollback = next(s for s in steps if "helm rollback" in s.get("run", ""))
    assert rollback["if"].startswith("failure()")
    assert steps.index(rollback) > steps.index(verify) > steps.index(upgrade)


# --- deploy.yml's helm steps, run with stand-ins for the cluster ---------------------------------------

SHIM = """#!/usr/bin/env bash
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$(basename "$0")" "$@" >> "$CALLS"
"""


def helm_step(name_part: str) -> dict[str, Any]:
    return next(s for s in steps_of(load("deploy.yml"), "helm") if name_part in s.get("name", ""))


def run_with_shims(
    step: dict[str, Any], tmp_path: Path, shims: dict[str, str], env: dict[str, str]
) -> tuple[int, list[list[str]], str]:
    """Run one `run:` step with `helm`/`kubectl` replaced by scripts that record their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in shims.items():
        shim = bin_dir / name
        shim.write_text(SHIM + body, encoding="utf-8")
        shim.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("", encoding="utf-8")
    script = tmp_path / "step.sh"
    script.write_text(step["run"], encoding="utf-8")
    full_env = (
        dict(os.environ)
        | env
        | {
            "CALLS": str(calls),
            "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
        }
    )
    done = run_command(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=REPO, env=full_env, timeout=120
    )
    recorded = [json.loads(line) for line in calls.read_text(encoding="utf-8").splitlines()]
    return done.returncode, recorded, done.stdout + done.stderr


DEPLOY_ENV = {
    "RELEASE": "mloop",
    "NAMESPACE": "mloop",
    "VALUES": "deploy/helm/mloop/values-production.yaml",
    "IMAGE_REPOSITORY": "ghcr.io/example/mloop",
    "IMAGE_TAG": "0123456789ab-model-v3",
    "IMAGE_DIGEST": "sha256:" + "ab" * 32,
    "MODEL_VERSION": "3",
}


def test_deploy_upgrade_renders_with_the_chart(tool: Callable[[str], str], tmp_path: Path) -> None:
    """The exact `helm upgrade` of deploy.yml, replayed as `helm template`: the chart takes every value."""
    helm = tool("helm")
    project = tmp_path / "project"
    project.mkdir()
    config = {"name": "deployed-houses", "data": {"source": "s3://bucket/houses.parquet", "target": "Sale_Price"}}
    (project / "mloop.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (project / "contract.yaml").write_text("version: 1\ncolumns: {}\n", encoding="utf-8")
    env = DEPLOY_ENV | {"MLOOP_CONFIG": str(project / "mloop.yaml")}
    code, calls, output = run_with_shims(helm_step("helm upgrade"), tmp_path, {"helm": "exit 0\n"}, env)
    assert code == 0, output
    [call] = calls
    assert call[:3] == ["helm", "upgrade", "--install"]
    args = call[3:]
    dropped = {"--create-namespace", "--wait"}
    with_value = {"--timeout", "--history-max"}
    template_args: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif arg not in dropped:
            template_args.append(arg)
    done = subprocess.run(
        [helm, "template", *template_args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    image = pod["spec"]["containers"][0]["image"]
    assert image == f"{DEPLOY_ENV['IMAGE_REPOSITORY']}@{DEPLOY_ENV['IMAGE_DIGEST']}"
    assert pod["metadata"]["annotations"]["mloop.dev/model-version"] == "3"
    assert not [o for o in objects if o["kind"] == "Job"], "no training Job: train.yml trained this version"
    rendered_config = "\n".join(
        str(v) for o in objects if o["kind"] == "ConfigMap" for v in (o.get("data") or {}).values()
    )
    assert "deployed-houses" in rendered_config, "the project's mloop.yaml becomes the ConfigMap"


READY_SHIMS = {
    "helm": "exit 0\n",
    "kubectl": """case "$1" in
  get) echo service/mloop ;;
  port-forward) exec python3 -m http.server 18000 --bind 127.0.0.1 --directory "$READY_DIR" ;;
esac
""",
}


@pytest.mark.parametrize(("served", "passes"), [("3", True), ("4", True), ("2", False)])
def test_deploy_readiness_check_compares_the_served_version(tmp_path: Path, served: str, passes: bool) -> None:
    ready = tmp_path / "ready-dir"
    ready.mkdir()
    (ready / "ready").write_text(f'{{"status": "ready", "model_version": "{served}"}}', encoding="utf-8")
    env = DEPLOY_ENV | {"READY_DIR": str(ready)}
    code, calls, output = run_with_shims(helm_step("Readiness"), tmp_path, READY_SHIMS, env)
    assert (code == 0) is passes, output
    assert calls[0][:2] == ["helm", "test"]
    assert f"served model version: {served}" in output


@pytest.mark.parametrize(("revisions", "rolled_back"), [(2, True), (1, False)])
def test_deploy_rolls_back_to_the_previous_revision(tmp_path: Path, revisions: int, rolled_back: bool) -> None:
    history = json.dumps([{"revision": i + 1, "status": "deployed"} for i in range(revisions)])
    shims = {"helm": f"""if [ "$1" = history ]; then echo '{history}'; fi\n"""}
    code, calls, output = run_with_shims(helm_step("Roll back"), tmp_path, shims, DEPLOY_ENV)
    rollbacks = [c for c in calls if c[1] == "rollback"]
    if rolled_back:
        assert code == 0, output
        assert rollbacks == [["helm", "rollback", "mloop", "0", "--namespace", "mloop", "--wait", "--timeout", "10m"]]
    else:
        assert code != 0 and not rollbacks
        assert "no earlier revision" in output


# --- train.yml's steps, run for real -------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}")


class StepRunner:
    """Runs the `run:` steps of one job the way a GitHub runner does, enough for train.yml: bash with
    -eo pipefail or python, GITHUB_OUTPUT per step, one GITHUB_STEP_SUMMARY, `if: always()`, and
    `${{ steps.X.outputs.Y }}` in step env. `uses:` steps and the pip install are what the test setup did."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.summary = workdir / "summary.md"
        self.outputs: dict[str, dict[str, str]] = {}
        self.outcomes: dict[str, str] = {}
        self.log: list[str] = []

    def run_job(self, steps: list[dict[str, Any]]) -> bool:
        failed = False
        for index, step in enumerate(steps):
            name = step.get("name", step.get("uses", ""))
            if "run" not in step or "pip install" in step["run"]:
                continue
            condition = step.get("if")
            assert condition in (None, "always()"), f"the runner does not evaluate `if: {condition}`"
            if failed and condition != "always()":
                self.outcomes[step.get("id", name)] = "skipped"
                continue
            ok = self._run(index, step)
            self.outcomes[step.get("id", name)] = "success" if ok else "failure"
            failed = failed or not ok
        return not failed

    def _run(self, index: int, step: dict[str, Any]) -> bool:
        output = self.workdir / f"output-{index}"
        output.write_text("", encoding="utf-8")
        env = dict(self.env) | {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(self.summary)}
        for key, value in (step.get("env") or {}).items():
            env[key] = EXPRESSION.sub(lambda m: self.outputs.get(m[1], {}).get(m[2], ""), str(value))
        assert "${{" not in step["run"], "scripts take expressions through env only"
        script = self.workdir / f"step-{index}"
        script.write_text(step["run"], encoding="utf-8")
        if step.get("shell") == "python":
            argv = [sys.executable, str(script)]
        else:
            argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
        done = subprocess.run(argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=600, check=False)
        self.log.append(f"--- {step.get('name')}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line]
            self.outputs[step["id"]] = {k: v for k, v in pairs}
        return done.returncode == 0


@pytest.fixture(scope="module")
def train_job() -> dict[str, Any]:
    job: dict[str, Any] = load("train.yml")["jobs"]["train"]
    return job


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> Path:
    """A small repository with a project at its root: 500 Ames sales of 2006-2007, searches and plots off."""
    root = tmp_path_factory.mktemp("repo")
    data = root / "data"
    data.mkdir()
    sales = ames[ames["Year_Sold"] <= 2007].head(500)
    sales.to_csv(data / "houses.csv", index=False)
    sales.drop(columns=["Gr_Liv_Area"]).to_csv(data / "broken.csv", index=False)
    config = {
        "name": "ci-houses",
        "task": "regression",
        "data": {
            "source": "data/houses.csv",
            "target": "Sale_Price",
            "time_column": "Year_Sold",
            "versioning": "off",
        },
        "train": {"importance": False, "plots": False, "params": {"max_iter": 50}},
        "gate": {"metric": "rmse", "min_improvement": 0.01},
    }
    (root / "mloop.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


def runner_for(project: Path, train_job: dict[str, Any], workdir: Path, **extra: str) -> StepRunner:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("MLOOP_", "MLFLOW_", "GITHUB_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    job_env: dict[str, str] = {}
    tests_values = {
        "MLOOP_CONFIG": str(project / "mloop.yaml"),
        "MLOOP_TRACKING__URI": f"sqlite:///{project / 'registry.db'}",
        "REPORTS": str(workdir / "reports"),
    }
    for key, value in train_job["env"].items():
        if key in tests_values:
            job_env[key] = tests_values[key]
        else:
            assert str(value).startswith("${{ secrets."), f"job env {key} is neither set by the test nor a secret"
            job_env[key] = ""  # an unset optional secret
    return StepRunner(workdir, env | job_env | extra)


@pytest.mark.integration
def test_train_workflow_steps_promote_then_reject_and_post_the_decision(
    project: Path, train_job: dict[str, Any], tmp_path: Path
) -> None:
    first = runner_for(project, train_job, tmp_path / "first")
    first.workdir.mkdir()
    assert first.run_job(train_job["steps"]), "\n".join(first.log)
    assert first.outputs["register"]["version"] == "1"
    assert first.outputs["gate"]["promoted"] == "true"
    summary = first.summary.read_text(encoding="utf-8")
    assert "Gate decision for version 1: ✅ promoted to champion" in summary
    assert "pass the data contract" in summary and "| rmse |" in summary

    # The same data again: the challenger does not beat the champion by 1%, the gate says no, the job passes.
    second = runner_for(project, train_job, tmp_path / "second")
    second.workdir.mkdir()
    assert second.run_job(train_job["steps"]), "\n".join(second.log)
    assert second.outputs["register"]["version"] == "2"
    assert second.outputs["gate"]["promoted"] == "false"
    summary = second.summary.read_text(encoding="utf-8")
    assert "Gate decision for version 2: ❌ rejected: the champion stays" in summary
    assert "| beats_champion | ❌ |" in summary and "champion (v1)" in summary


@pytest.mark.integration
def test_train_workflow_stops_at_a_contract_violation_and_says_why(
    project: Path, train_job: dict[str, Any], tmp_path: Path
) -> None:
    # The contract is inferred by the first ingest (in the test above, or here if run alone).
    if not (project / "contract.yaml").exists():
        ok(mloop("-c", str(project / "mloop.yaml"), "ingest", cwd=project))
    runner = runner_for(project, train_job, tmp_path, MLOOP_DATA__SOURCE="data/broken.csv")
    assert not runner.run_job(train_job["steps"])
    assert runner.outcomes["validate"] == "failure"
    assert runner.outcomes["register"] == "skipped" and runner.outcomes["gate"] == "skipped"
    summary = runner.summary.read_text(encoding="utf-8")
    assert "breaks the data contract" in summary and "| Gr_Liv_Area | missing_column |" in summary
