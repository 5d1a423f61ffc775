"""deploy/docker/Dockerfile built with podman and run on 127.0.0.1, against a model trained here.

The image is built once, with a project trained on the host baked in; it must answer /health and
/ready, predict what the same model predicts on the host, carry its HEALTHCHECK (and pass it), run as
user 10001 (owning nothing outside its project folder) and hold no compiler. It is served with a
read-only root filesystem, writable only in a tmpfs /tmp and a volume on the workspace
(/app/project/.mloop), as Kubernetes runs it: the prediction log lands in that volume and a restart
answers again. A server on a writable root writes nowhere else either. The same image then serves a
model from a registry URI (an `mlflow server` on 127.0.0.1 named by MLOOP_TRACKING__URI), read-only
too, its workspace a host folder. Every wait is bounded; every container, volume and server started
here is removed, whatever happens.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mloop.data.contract import coerce_frame
from mloop.data.predictions import open_prediction_store
from mloop.project import Project
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, alias_version, load_model
from tests.helpers.projects import early_sales, train_champion, write_project
from tests.helpers.servers import free_port, mlflow_server
from tests.helpers.traffic import as_records

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "container-setup.sh"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IMAGE = "localhost/mloop-container-test:latest"
TRAIN_ROWS = 400
SETUP_SECONDS = 900  # apt-get install and mmdebstrap on a new machine
BUILD_SECONDS = 1800  # a cold build downloads every dependency
START_SECONDS = 180
COMMAND_SECONDS = 120
LOG_SECONDS = 30  # the server's writer thread stores a batch within milliseconds
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make")
UID = 10001  # the image's user and group (deploy/docker/Dockerfile; deploy/helm/mloop runs pods as the same)
PROJECT_DIR = "/app/project"
WORKSPACE = f"{PROJECT_DIR}/.mloop"
# A read-only root as Docker (`--read-only`) and Kubernetes (readOnlyRootFilesystem) make it: podman's own extra
# tmpfs mounts (/run, /var/tmp, ... with --read-only-tmpfs) are turned off, and /tmp is a tmpfs with Docker's
# default options, noexec among them. The workspace volume comes on top.
READ_ONLY = ("--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=512m")  # noqa: S108
# Run inside the container (as its user): the request ids in the prediction log of the project's workspace.
LOGGED_IDS = """
import json
from mloop.project import Project
print(json.dumps(Project.load().prediction_store().read()["request_id"].tolist()))
"""
# Run inside the container: who the server (PID 1) is, how / is mounted, and what creating a file does in each
# folder given (the errno's name, or "ok").
IDENTITY_AND_WRITES = """
import errno, json, os, sys
status = dict(line.split(":", 1) for line in open("/proc/1/status").read().splitlines() if ":" in line)
mounts = [line.split() for line in open("/proc/1/mounts").read().splitlines()]
writes = {}
for folder in sys.argv[1:]:
    path = os.path.join(folder, ".write-probe")
    try:
        open(path, "x").close()
    except OSError as exc:
        writes[folder] = errno.errorcode[exc.errno]
    else:
        os.remove(path)
        writes[folder] = "ok"
print(json.dumps({
    "uid": status["Uid"].split(), "gid": status["Gid"].split(),
    "root": [m[3].split(",") for m in mounts if m[1] == "/"][-1],
    "writes": writes,
}))
"""


@dataclass(frozen=True)
class Podman:
    """``podman`` with the settings scripts/container-setup.sh printed (CONTAINERS_CONF, base image, index)."""

    env: dict[str, str]

    def __call__(
        self, *args: str, timeout: float = COMMAND_SECONDS, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"podman {args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result


@dataclass(frozen=True)
class Container:
    name: str
    url: str


def _train(root: Path, frame: pd.DataFrame, name: str, **sections: Any) -> Project:
    """A project trained by the real pipeline on the host: version 1, champion."""
    return train_champion(
        write_project(root, frame, name, serve=None, train={"importance": False, "plots": False}, **sections)
    )


def _host_predictions(project: Project, rows: pd.DataFrame) -> tuple[list[dict[str, Any]], list[float], str]:
    """The records to send and what the champion predicts for them on the host, through mloop's own API."""
    info = alias_version(project, CHAMPION)
    assert info is not None
    pipeline, contract = load_model(project, info.version), version_contract(project, info)
    expected = np.asarray(pipeline.predict(coerce_frame(rows, contract)), dtype=float).tolist()
    return as_records(rows, contract), expected, info.version


@pytest.fixture(scope="session")
def podman() -> Podman:
    """Podman set up by scripts/container-setup.sh (idempotent: packages, containers.conf, base image)."""
    if os.geteuid() != 0:
        pytest.fail("the container tests need root: apt-get, mmdebstrap and rootful podman")
    setup = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=SETUP_SECONDS, check=False, cwd=ROOT
    )
    assert setup.returncode == 0, f"{SETUP.name} failed:\n{setup.stderr[-3000:]}"
    env = dict(os.environ)
    for line in setup.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    for key in ("CONTAINERS_CONF", "MLOOP_BASE_IMAGE", "PIP_INDEX_URL"):
        assert env.get(key), f"{SETUP.name} printed no {key}:\n{setup.stdout}"
    return Podman(env)


@pytest.fixture(scope="session")
def train_frame(ames: pd.DataFrame) -> pd.DataFrame:
    return early_sales(ames, TRAIN_ROWS)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, train_frame: pd.DataFrame) -> Project:
    """The project baked into the image, pinned to this environment's versions as deploy/docker/README.md says."""
    proj = _train(tmp_path_factory.mktemp("baked") / "ames", train_frame, "ames-container")
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=True,
    )
    pins = [line for line in freeze.stdout.splitlines() if "==" in line and not line.lower().startswith("mloop==")]
    (proj.root / "constraints.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    return proj


@pytest.fixture(scope="session")
def image(podman: Podman, project: Project, tmp_path_factory: pytest.TempPathFactory) -> str:
    log = tmp_path_factory.mktemp("build") / "build.log"
    argv = [
        "build", "--format", "docker", "--file", str(DOCKERFILE),
        "--build-context", f"project={project.root}",
        "--build-arg", f"BASE_IMAGE={podman.env['MLOOP_BASE_IMAGE']}",
        "--build-arg", f"PIP_INDEX_URL={podman.env['PIP_INDEX_URL']}",
        "--tag", IMAGE, str(ROOT),
    ]  # fmt: skip
    with log.open("w", encoding="utf-8") as out:
        result = subprocess.run(
            ["podman", *argv], env=podman.env, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_SECONDS, check=False
        )
    if result.returncode != 0:
        pytest.fail(f"podman build failed ({result.returncode}):\n{log.read_text(encoding='utf-8')[-5000:]}")
    return IMAGE


def wait_for_health(podman: Podman, name: str, url: str) -> None:
    """Until /health answers 200 at ``url``; fails with the container's logs if it stops or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        running = podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if running != "true":
            logs = podman("logs", name, check=False)
            pytest.fail(f"the container stopped:\n{(logs.stdout + logs.stderr)[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            logs = podman("logs", name, check=False)
            pytest.fail(f"/health did not answer within {START_SECONDS}s:\n{(logs.stdout + logs.stderr)[-4000:]}")
        time.sleep(0.5)


@contextmanager
def run_container(podman: Podman, image: str, url: str, *options: str) -> Iterator[Container]:
    """``podman run -d`` with ``options`` until /health answers 200 at ``url``; removed on the way out."""
    name = f"mloop-test-{uuid.uuid4().hex[:10]}"
    podman("run", "--detach", "--name", name, *options, image)
    try:
        wait_for_health(podman, name, url)
        yield Container(name, url)
    finally:
        podman("rm", "--force", "--time", "5", name, check=False, timeout=COMMAND_SECONDS)


def logged_request_ids(podman: Podman, name: str, expected: list[str]) -> list[str]:
    """The request ids in the container's prediction log, read there once ``expected`` are all in it."""
    deadline = time.monotonic() + LOG_SECONDS
    while True:
        found: list[str] = json.loads(podman("exec", name, "python3", "-c", LOGGED_IDS).stdout.splitlines()[-1])
        if set(expected) <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture(scope="module")
def workspace_volume(podman: Podman) -> Iterator[str]:
    """A new named volume for the workspace: mounted first, it is filled from the image's .mloop/ (the baked store)."""
    name = f"mloop-test-workspace-{uuid.uuid4().hex[:10]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def baked(podman: Podman, image: str, workspace_volume: str) -> Iterator[Container]:
    """The image with its baked-in model on a read-only root with the workspace volume, on 127.0.0.1 only."""
    port = free_port()
    options = ["--publish", f"127.0.0.1:{port}:8000", *READ_ONLY, "--volume", f"{workspace_volume}:{WORKSPACE}"]
    with run_container(podman, image, f"http://127.0.0.1:{port}", *options) as container:
        yield container


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, content=json.dumps(body), headers={"content-type": "application/json"}, timeout=30.0)


def test_the_baked_model_is_live_and_ready(baked: Container, podman: Podman) -> None:
    assert httpx.get(f"{baked.url}/health", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{baked.url}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "model_version": "1"}

    check = podman("healthcheck", "run", baked.name, check=False)  # the image's own HEALTHCHECK, run now

    assert check.returncode == 0, check.stdout + check.stderr
    assert podman("inspect", "--format", "{{.State.Health.Status}}", baked.name).stdout.strip() == "healthy"


def test_predictions_equal_the_same_model_on_the_host(baked: Container, project: Project) -> None:
    frame = pd.read_csv(project.root / "train.csv")
    rows = pd.concat([frame[frame["Mas_Vnr_Type"].isna()].head(3), frame.tail(4)])  # missing values sent as null
    records, expected, version = _host_predictions(project, rows)

    one = _post(f"{baked.url}/v1/predict", records[0])
    many = _post(f"{baked.url}/v1/predict", records)

    assert one.status_code == 200, one.text
    assert one.json()["prediction"] == pytest.approx(expected[0], rel=1e-9)
    assert one.json()["model_version"] == version
    assert many.status_code == 200, many.text
    assert many.json()["predictions"] == pytest.approx(expected, rel=1e-9)


def test_the_server_runs_as_user_10001_on_a_read_only_root(baked: Container, podman: Podman) -> None:
    folders = ["/", "/app", PROJECT_DIR, "/opt/venv", "/etc", "/var/tmp", "/run", "/tmp", WORKSPACE]  # noqa: S108

    probe = json.loads(podman("exec", baked.name, "python3", "-c", IDENTITY_AND_WRITES, *folders).stdout)
    read_only = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", baked.name).stdout.strip()

    assert probe["uid"] == [str(UID)] * 4 and probe["gid"] == [str(UID)] * 4, "PID 1 (mloop serve) is not 10001"
    assert read_only == "true" and "ro" in probe["root"], probe["root"]
    # EROFS, not EACCES: the user owns /app/project, so only the read-only mount stops the write there.
    assert probe["writes"] == {**dict.fromkeys(folders, "EROFS"), "/tmp": "ok", WORKSPACE: "ok"}  # noqa: S108


def test_the_prediction_log_is_kept_in_the_workspace_volume_across_a_restart(
    baked: Container, podman: Podman, project: Project, workspace_volume: str
) -> None:
    frame = pd.read_csv(project.root / "train.csv")
    records, expected, _ = _host_predictions(project, frame.head(2))
    before = _post(f"{baked.url}/v1/predict", records[0])
    assert before.status_code == 200, before.text
    first_id = before.json()["request_id"]
    assert first_id in logged_request_ids(podman, baked.name, [first_id])
    mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", workspace_volume).stdout.strip()
    stored = Path(mountpoint) / "predictions.db"

    podman("restart", "--time", "10", baked.name)  # a new process, /tmp empty again: only the volume is kept
    wait_for_health(podman, baked.name, baked.url)
    after = _post(f"{baked.url}/v1/predict", records[1])

    assert stored.is_file() and stored.stat().st_uid == UID, f"no prediction log of user {UID} in the volume"
    assert after.status_code == 200, after.text
    assert after.json()["prediction"] == pytest.approx(expected[1], rel=1e-9)
    second_id = after.json()["request_id"]
    assert {first_id, second_id} <= set(logged_request_ids(podman, baked.name, [first_id, second_id]))


def test_a_server_on_a_writable_root_writes_only_to_tmp_and_the_workspace(
    podman: Podman, image: str, project: Project
) -> None:
    """Every write the server tries shows up in ``podman diff``: it runs as root here, so none is refused.

    A read-only root (or, as user 10001, a folder it does not own) refuses a write, and a library that
    swallows the error (MLflow's telemetry id in ~/.config, say) would go unseen by the read-only tests.
    """
    records, _, _ = _host_predictions(project, pd.read_csv(project.root / "train.csv").head(1))
    port = free_port()
    options = ["--user", "0", "--publish", f"127.0.0.1:{port}:8000"]
    with run_container(podman, image, f"http://127.0.0.1:{port}", *options) as container:
        answer = _post(f"{container.url}/v1/predict", records)
        assert answer.status_code == 200, answer.text
        logged_request_ids(podman, container.name, answer.json()["request_ids"])
        changes = json.loads(podman("diff", "--format", "json", container.name).stdout)

    written = {path for paths in changes.values() for path in paths}
    allowed = ("/tmp", WORKSPACE)  # noqa: S108
    ancestors = {"/", "/app", PROJECT_DIR}
    podmans_own = {"/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run", "/run/.containerenv"}
    outside = sorted(
        p for p in written - ancestors - podmans_own if not any(p == a or p.startswith(a + "/") for a in allowed)
    )
    assert outside == [], f"written outside /tmp and the workspace: {outside}"
    assert any(p.startswith(WORKSPACE + "/predictions.db") for p in written)


def test_the_image_has_a_healthcheck_a_non_root_user_and_no_compiler(podman: Podman, image: str) -> None:
    inspect = json.loads(podman("image", "inspect", image).stdout)[0]
    # podman keeps it at the top (Docker in Config); only the docker format (--format docker) has one at all.
    healthcheck = inspect.get("Healthcheck") or inspect["Config"].get("Healthcheck")
    user = inspect["Config"]["User"]
    probe = "id -u; for c in " + " ".join(COMPILERS) + '; do command -v "$c"; done; true'
    # Everything the user owns on the image's own filesystem (not /proc, /dev or mounts), looked for by root.
    owned_probe = ["--user", "0", "--entrypoint", "find", image, "/", "-xdev", "-user", str(UID), "-print"]

    found = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", probe).stdout.split()
    owned = podman("run", "--rm", *owned_probe).stdout.split()

    assert "docker" in inspect.get("ManifestType", "docker")
    assert healthcheck and healthcheck["Test"][0] == "CMD" and "healthcheck.py" in healthcheck["Test"][-1]
    assert (DOCKERFILE.parent / "healthcheck.py").read_text(encoding="utf-8").count("/health") >= 1
    assert user == f"{UID}:{UID}"
    assert found[0] == str(UID), "the container does not run as the image's user"
    assert found[1:] == [], f"compilers in the final image: {found[1:]}"
    assert PROJECT_DIR in owned and WORKSPACE in owned
    assert [p for p in owned if not (p == PROJECT_DIR or p.startswith(PROJECT_DIR + "/"))] == []


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An `mlflow server` on 127.0.0.1 (SQLite store, proxied artifacts), stopped with its workers at the end."""
    folder = tmp_path_factory.mktemp("registry")
    with mlflow_server(
        f"sqlite:///{folder / 'mlflow.db'}",
        folder / "mlflow.log",
        artifacts_destination=(folder / "artifacts").as_uri(),
        timeout=START_SECONDS,
    ) as server:
        yield server.url


def test_the_image_serves_a_model_from_a_registry_uri(
    podman: Podman,
    image: str,
    registry: str,
    train_frame: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project = _train(
        tmp_path_factory.mktemp("remote") / "ames",
        train_frame.tail(300),
        "ames-from-registry",
        tracking={"uri": registry},
    )
    records, expected, version = _host_predictions(project, train_frame.head(5))
    port = free_port()
    workspace = tmp_path_factory.mktemp("workspace")  # a host folder for the workspace, the image's user's
    os.chown(workspace, UID, UID)
    # The host's network, so the container reaches the registry on 127.0.0.1; the server binds 127.0.0.1 too.
    env = {
        "MLOOP_TRACKING__URI": registry,
        "MLOOP_NAME": project.name,
        "MLOOP_SERVE__HOST": "127.0.0.1",
        "MLOOP_SERVE__PORT": str(port),
    }
    options = [
        "--network", "host", *READ_ONLY, "--volume", f"{workspace}:{WORKSPACE}",
        *(f"--env={key}={value}" for key, value in env.items()),
    ]  # fmt: skip

    with run_container(podman, image, f"http://127.0.0.1:{port}", *options) as container:
        ready = httpx.get(f"{container.url}/ready", timeout=10)
        answer = _post(f"{container.url}/v1/predict", records)
        if answer.status_code == 200:
            logged_request_ids(podman, container.name, answer.json()["request_ids"])

    assert ready.json() == {"status": "ready", "model_version": version}
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(expected, rel=1e-9)
    # The container is gone; its prediction log is in the host folder.
    logged = open_prediction_store(workspace / "predictions.db").read()["request_id"].tolist()
    assert logged == answer.json()["request_ids"]
