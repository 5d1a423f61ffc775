"""deploy/compose: Docker Compose validates it offline, and the stack is wired the way docs/deploy.md (and, for
the stream consumer, docs/streaming-deploy.md) says.

Debian's `docker-compose` 1.29 checks the file against the Compose specification (unknown keys are errors)
without a Docker engine; the structure tests read its resolved output (`config`), so they see what
`docker compose up` would run: interpolated variables, absolute mount paths, normalised ports. The `train`
one-shot's command runs for real, with the installed `mloop` against a real MLflow server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mloop.cli.main import app
from mloop.config import load_config
from tests.helpers.cli import MLOOP_SCRIPT, clean_env
from tests.helpers.servers import mlflow_server

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"

SERVICES = {
    "postgres",
    "minio",
    "minio-init",
    "mlflow",
    "train",
    "api",
    "redis",
    "stream",
    "controller",
    "prometheus",
    "grafana",
}
MLOOP_SERVICES = {"train", "api", "stream", "controller"}
# Variables a developer may have exported that would change what Compose resolves.
STACK_VARIABLES = {
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MLFLOW_S3_ACCESS_KEY",
    "MLFLOW_S3_SECRET_KEY",
    "MLFLOW_S3_BUCKET",
    "GRAFANA_ADMIN_USER",
    "GRAFANA_ADMIN_PASSWORD",
    "MLOOP_API_KEYS",
    "MLOOP_WATCH_INTERVAL",
    "MLOOP_API_PORT",
    "MLFLOW_PORT",
    "MINIO_API_PORT",
    "MINIO_CONSOLE_PORT",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "REDIS_PORT",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
}


def compose_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}


def run_compose(
    docker_compose: str, *args: str, compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            docker_compose,
            "--project-directory",
            str(COMPOSE_DIR),
            "--env-file",
            str(env_file),
            "-f",
            str(compose_file),
            *args,
        ],
        cwd=COMPOSE_DIR,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def docker_compose(tool: Callable[[str], str]) -> str:
    return tool("docker-compose")


@pytest.fixture(scope="module")
def resolved(docker_compose: str) -> dict[str, Any]:
    """`docker-compose config` of the stack with the placeholder .env.example: validated and resolved."""
    done = run_compose(docker_compose, "config")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module")
def services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = resolved["services"]
    return found


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


def host_path_of(service: dict[str, Any], container_path: str) -> Path | None:
    """The host file or folder a container path resolves to through the service's bind mounts."""
    for target, source in sorted(bind_mounts(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    return None


# --- Compose itself ------------------------------------------------------------------------------------


def test_docker_compose_config_validates_the_stack(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == SERVICES


def test_a_wrong_key_makes_docker_compose_config_fail(docker_compose: str, tmp_path: Path) -> None:
    """The check bites: the same file with one misspelt key is rejected, naming the key."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "    restart: unless-stopped\n" in text
    broken.write_text(text.replace("    restart: unless-stopped\n", "    restart_policy: unless-stopped\n", 1))
    done = run_compose(docker_compose, "config", compose_file=broken)
    assert done.returncode != 0
    assert "restart_policy" in done.stderr


def test_missing_secrets_stop_compose_with_a_message(docker_compose: str, tmp_path: Path) -> None:
    """Without a .env the stack does not start with empty passwords: Compose names the variable to set."""
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    done = run_compose(docker_compose, "config", env_file=empty)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr or "in .env (copy .env.example)" in done.stderr


# --- services and their wiring -------------------------------------------------------------------------


def test_mlflow_runs_on_postgresql_with_s3_artifacts(services: dict[str, dict[str, Any]]) -> None:
    mlflow = services["mlflow"]
    env = mlflow["environment"]
    assert mlflow["entrypoint"] == ["mlflow"] and mlflow["command"][0] == "server"
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://mlflow:")
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mlflow:5000" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert mlflow["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    assert services["minio"]["image"].startswith("minio/minio:RELEASE.")
    assert services["postgres"]["image"].startswith("postgres:")


def test_mloop_services_use_the_image_of_deploy_docker(services: dict[str, dict[str, Any]]) -> None:
    assert DOCKERFILE.is_file(), "deploy/docker/Dockerfile builds the mloop image"
    for name in MLOOP_SERVICES | {"mlflow"}:
        build = services[name]["build"]
        assert Path(build["context"]) == REPO, name
        assert (Path(build["context"]) / build["dockerfile"]) == DOCKERFILE, name
        assert services[name]["image"] == services["api"]["image"], name


def test_mloop_services_run_as_the_image_user_on_a_read_only_root(services: dict[str, dict[str, Any]]) -> None:
    """As the chart's pods: the Dockerfile's user, a read-only root, writable only /tmp (tmpfs) and the project."""
    (image_user,) = [
        line.split()[1] for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if line.startswith("USER ")
    ]
    for name in MLOOP_SERVICES | {"mlflow"}:
        service = services[name]
        assert service["user"] == image_user, name
        assert service["read_only"] is True, name
        assert [entry.split(":")[0] for entry in service["tmpfs"]] == ["/tmp"], name  # noqa: S108 - a mount path
        for entry in service.get("volumes", []):
            source, target, mode = entry.split(":")
            writable = mode != "ro"
            assert not writable or (not source.startswith("/") and target == "/app/project"), f"{name}: {entry}"


def test_mloop_services_are_configured_through_mloop_environment_variables(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in MLOOP_SERVICES:
        env = services[name]["environment"]
        assert env["MLOOP_TRACKING__URI"] == "http://mlflow:5000", name
        config_path = env["MLOOP_CONFIG"]
        host_config = host_path_of(services[name], config_path)
        assert host_config is not None and host_config.is_file(), f"{name}: {config_path} is not mounted"
        assert "project:" + str(Path(config_path).parent) in [v.rsplit(":", 1)[0] for v in services[name]["volumes"]]
    # The project file is a valid mloop config once the container's environment is applied.
    env = services["api"]["environment"]
    for key, value in env.items():
        if key.startswith("MLOOP_") and key != "MLOOP_CONFIG" and "__" in key:
            monkeypatch.setenv(key, value)
    host_config = host_path_of(services["api"], env["MLOOP_CONFIG"])
    assert host_config is not None
    config = load_config(host_config)
    assert config.tracking.uri == "http://mlflow:5000"
    data_file = host_path_of(services["api"], config.data.source)
    assert data_file is not None and data_file.is_file(), f"data.source {config.data.source} is not mounted"


def test_api_serves_on_port_8000_with_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["command"][0] == "serve" and "0.0.0.0" in api["command"]  # noqa: S104 - inside the container
    assert any(str(port).endswith(":8000/tcp") or str(port).endswith(":8000") for port in api["ports"])
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert api["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    assert api["depends_on"]["train"] == {"condition": "service_completed_successfully"}


def test_controller_runs_mloop_watch(services: dict[str, dict[str, Any]]) -> None:
    controller = services["controller"]
    assert controller["command"][0] == "watch"
    assert controller["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert controller["restart"] == "unless-stopped"
    # It shares the API's workspace (prediction log, monitoring results the API's gauges read).
    assert {v for v in controller["volumes"] if v.startswith("project:")} == {
        v for v in services["api"]["volumes"] if v.startswith("project:")
    }


def test_stream_consumes_redis_with_metrics_for_prometheus(services: dict[str, dict[str, Any]]) -> None:
    """`mloop stream` against the stack's Redis, /metrics on every interface of its container, the CLI's options."""
    stream, redis = services["stream"], services["redis"]
    command = stream["command"]
    assert command[0] == "stream"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    for option in ("--source", "--sink", "--labels"):
        assert options[option].startswith("redis://redis:6379/"), option
    assert options["--source"] != options["--sink"]
    assert options["--metrics-host"] == "0.0.0.0"  # noqa: S104 - inside the container, for Prometheus
    assert int(options["--metrics-port"]) > 0
    # The arguments parse with mloop's own CLI (parsed only: nothing runs).
    group = typer.main.get_command(app)
    group.commands["stream"].make_context("stream", list(command[1:]))  # type: ignore[attr-defined]
    assert stream["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "mlflow": {"condition": "service_healthy"},
        "train": {"condition": "service_completed_successfully"},
    }
    # The image's HEALTHCHECK asks the API's /health; the consumer's asks its own /metrics.
    assert f"127.0.0.1:{options['--metrics-port']}/metrics" in " ".join(stream["healthcheck"]["test"])
    assert stream["restart"] == "unless-stopped"
    # SIGTERM drains the batch in hand: more than Compose's default 10 s before SIGKILL.
    assert stream["stop_grace_period"] not in {"10s", None}
    # The image is built with the extra that brings the brokers' clients.
    assert "stream" in stream["build"]["args"]["EXTRAS"].split(",")
    # It shares the API's workspace: one prediction log, the labels attached to it.
    assert {v for v in stream["volumes"] if v.startswith("project:")} == {
        v for v in services["api"]["volumes"] if v.startswith("project:")
    }
    assert redis["image"].startswith("redis:7.")  # KEDA's lag trigger on Kubernetes needs Redis 7
    assert "redis:/data" in " ".join(redis["volumes"])


def test_first_training_runs_only_without_a_champion(services: dict[str, dict[str, Any]]) -> None:
    train = services["train"]
    script = " ".join(train["command"])
    assert "mloop models --json" in script and "|| mloop run" in script
    assert train["restart"] == "no"


def test_every_awaited_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if condition["condition"] == "service_healthy":
                assert services[needed].get("healthcheck", {}).get("test"), f"{needed} has no health check"
            if condition["condition"] == "service_completed_successfully":
                assert services[needed]["restart"] == "no", f"{needed} is a one-shot job"


# --- Prometheus and Grafana ----------------------------------------------------------------------------


def test_prometheus_mounts_the_rule_files_that_exist(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    host_config = host_path_of(prometheus, config_path)
    assert host_config is not None and host_config.is_file()
    config = yaml.safe_load(host_config.read_text(encoding="utf-8"))
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        host_rules = host_path_of(prometheus, in_container)
        assert host_rules is not None, f"{in_container} is not mounted"
        assert host_rules.is_file() and host_rules.parent == PROMETHEUS_DIR, host_rules
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for group in jobs["mloop"]["static_configs"] for t in group["targets"]]
    assert targets == ["api:8000"], "the alert rules select job=mloop: it must scrape the API service"
    # The stream consumer under its own job, at the port its command serves /metrics on.
    command = services["stream"]["command"]
    port = command[command.index("--metrics-port") + 1]
    stream_targets = [t for group in jobs["mloop-stream"]["static_configs"] for t in group["targets"]]
    assert stream_targets == [f"stream:{port}"]
    assert jobs["mloop-stream"]["metrics_path"] == "/metrics"


def test_promtool_accepts_the_stack_prometheus_config(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    # Lay the mounted files out as the container sees them, then check config and rules together.
    prometheus = services["prometheus"]
    for target, source in bind_mounts(prometheus).items():
        if target.startswith("/etc/prometheus/"):
            shutil.copy(source, tmp_path / Path(target).name)
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rule files found" in done.stdout


def test_grafana_provisioning_points_at_existing_dashboards(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    provisioning = host_path_of(grafana, "/etc/grafana/provisioning/dashboards")
    assert provisioning is not None and provisioning.is_dir()
    providers = [
        provider
        for path in sorted(provisioning.glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]
    ]
    assert providers
    shipped = {p.name for p in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert shipped, "deploy/grafana/dashboards has the dashboards"
    for provider in providers:
        folder = host_path_of(grafana, provider["options"]["path"])
        assert folder is not None and folder.is_dir(), f"provider path {provider['options']['path']} is not mounted"
        dashboards = {p.name for p in folder.glob("*.json")}
        assert dashboards == shipped
        for path in folder.glob("*.json"):
            assert json.loads(path.read_text(encoding="utf-8"))["uid"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_file = host_path_of(grafana, home)
    assert home_file is not None and home_file.is_file()


def test_grafana_datasource_is_the_stack_prometheus(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    folder = "/etc/grafana/provisioning/datasources"
    files = [p for target, p in bind_mounts(grafana).items() if target.startswith(folder + "/")]
    assert files
    sources = [s for path in files for s in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]]
    upstream = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert [(s["name"], s["uid"], s["type"]) for s in sources] == [
        (s["name"], s["uid"], s["type"]) for s in upstream["datasources"]
    ]
    assert sources[0]["url"] == "http://prometheus:9090"
    assert "prometheus" in services


def test_every_bind_mount_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert source.is_relative_to(REPO), f"{name}: {source} is outside the repository"


# --- exposure and secrets ------------------------------------------------------------------------------


def test_no_port_is_published_on_every_interface(services: dict[str, dict[str, Any]]) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is not bound to 127.0.0.1"
        assert "network_mode" not in service, f"{name} must not use the host network"
    assert published >= 5
    assert "postgres" not in {n for n, s in services.items() if s.get("ports")}, "PostgreSQL stays internal"
    # The file as written too, before Compose normalises it.
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in raw["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
            assert "0.0.0.0" not in str(port)  # noqa: S104


def test_the_compose_file_holds_no_secret_values() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    placeholders = env_example()
    secret_keys = [k for k in placeholders if any(w in k for w in ("PASSWORD", "SECRET", "ACCESS_KEY", "USER"))]
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "MLFLOW_S3_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"} <= set(
        secret_keys
    )
    for key in secret_keys:
        assert placeholders[key] not in text, f"the value of {key} from .env.example is written in the compose file"
    assert "change-me" not in text
    raw = yaml.safe_load(text)
    for name, service in raw["services"].items():
        for var, value in (service.get("environment") or {}).items():
            if any(w in var for w in ("PASSWORD", "SECRET", "ACCESS_KEY", "API_KEYS")):
                assert str(value).startswith("${"), f"{name}: {var} must come from .env, not the file"
            if var.endswith("_URI") and "@" in str(value):
                assert "${POSTGRES_PASSWORD}" in str(value), f"{name}: {var} embeds a literal password"


def test_env_file_is_not_committed_and_the_example_has_only_placeholders() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(COMPOSE_DIR / ".env")], cwd=REPO, capture_output=True, check=False
    )
    assert ignored.returncode == 0, "deploy/compose/.env must be ignored by git"
    for key, value in env_example().items():
        if any(w in key for w in ("PASSWORD", "SECRET", "ACCESS_KEY", "USER")):
            assert value.startswith("change-me"), f"{key} in .env.example must be a placeholder"


# --- the one-shot scripts ------------------------------------------------------------------------------


def shell_script(service: dict[str, Any]) -> str:
    """The script a `/bin/sh -c` service runs, with Compose's `$$` escapes undone."""
    assert service["entrypoint"][0] == "/bin/sh" and service["entrypoint"][-1].endswith("c")
    script: str = service["command"][0]
    return script.replace("$$", "$")


@pytest.mark.parametrize("name", ["minio-init", "train"])
def test_one_shot_scripts_are_valid_posix_shell(services: dict[str, dict[str, Any]], name: str) -> None:
    done = subprocess.run(["sh", "-n"], input=shell_script(services[name]), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        done = subprocess.run(
            [shellcheck, "-s", "sh", "-"],
            input=shell_script(services[name]),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout


def train_service_env(service: dict[str, Any], project_dir: Path, tracking_uri: str) -> dict[str, str]:
    """The `train` service's own environment, with the two things only a container has replaced: the project
    folder (its mloop.yaml, from deploy/compose/project) and the MLflow server (`http://mlflow:5000`). The data
    is the file the service's bind mount points at, by its path on this machine."""
    env = clean_env(drop=STACK_VARIABLES) | {k: str(v) for k, v in service["environment"].items()}
    project_config = host_path_of(service, env["MLOOP_CONFIG"])
    assert project_config is not None and project_config.is_file()
    (project_dir / "mloop.yaml").write_bytes(project_config.read_bytes())
    data_source = str(load_config(project_config).data.source)
    data_file = host_path_of(service, data_source)
    assert data_file is not None and data_file.is_file(), f"data.source {data_source} is not mounted"
    assert env["MLOOP_TRACKING__URI"] == "http://mlflow:5000"
    return env | {
        "MLOOP_CONFIG": str(project_dir / "mloop.yaml"),
        "MLOOP_DATA__SOURCE": str(data_file),
        "MLOOP_TRACKING__URI": tracking_uri,
        # The installed CLI first on PATH (`mloop`, and the `python3` the script pipes into), as in the image.
        "PATH": os.pathsep.join([str(Path(MLOOP_SCRIPT).parent), "/usr/bin", "/bin"]),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a server that died fails the test at once, not after minutes
    }


def run_train_service(service: dict[str, Any], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The service's entrypoint and command, as Compose runs them in the container."""
    return subprocess.run(
        [*service["entrypoint"], *service["command"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_train_service_trains_a_champion_once(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The `train` one-shot with the real `mloop` against a real MLflow server: the first start trains, registers
    and promotes the project's first model; the next start finds the champion and trains nothing."""
    from mlflow import MlflowClient

    train = services["train"]
    assert Path(MLOOP_SCRIPT).is_file(), f"the installed CLI is missing: {MLOOP_SCRIPT}"
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    store = tmp_path / "mlflow"
    store.mkdir()
    with mlflow_server(
        f"sqlite:///{store / 'mlflow.db'}",
        tmp_path / "mlflow.log",
        artifacts_destination=(store / "artifacts").as_uri(),
    ) as server:
        env = train_service_env(train, project_dir, server.url)
        name = load_config(project_dir / "mloop.yaml").name
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)

        first = run_train_service(train, env, project_dir)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "promoted to champion" in first.stdout, first.stdout
        (version,) = client.search_model_versions(f"name='{name}'")
        champion = client.get_model_version_by_alias(name, "champion")
        assert champion.version == version.version == "1"
        assert champion.tags["mloop.data_source"] == env["MLOOP_DATA__SOURCE"]
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 1 and runs[0].info.run_id == champion.run_id
        # The model's files went through the server to its artifact store (as to MinIO in the stack).
        assert list((store / "artifacts").rglob("MLmodel")), "no model artifact reached the MLflow server's store"

        again = run_train_service(train, env, project_dir)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "snapshot" not in again.stdout and "promoted" not in again.stdout, again.stdout
        assert [v.version for v in client.search_model_versions(f"name='{name}'")] == ["1"]
        assert len(client.search_runs([experiment.experiment_id])) == 1
