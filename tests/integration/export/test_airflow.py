"""`mloop export airflow`: the DAG file runs in a real Airflow (its own venv, SQLite, `airflow dags test`).

The training DAG must take a fresh project to a registered champion, task by task; the monitoring DAG
must skip on no traffic and decide on real traffic; the kubernetes-mode file must import cleanly in a
DagBag. The Airflow venv has no mloop, so each of these also proves the DAG file does not import it.
"""

from __future__ import annotations

import ast
import json
import math
import sqlite3
import subprocess
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.cli import MLOOP_SCRIPT, clean_env, mloop, ok

from mloop.data.contract import load_contract
from mloop.data.predictions import PredictionRow, PredictionStore, utc_now
from mloop.export import options
from mloop.project import Project
from mloop.registry.versions import CHAMPION, alias_version, list_versions

from .conftest import WINDOW

pytestmark = pytest.mark.integration

TRAINING = ["ingest", "validate", "train", "register", "promote"]
MONITORING = ["monitor", "retrain"]
BATCH = ["score", "drift"]


@dataclass(frozen=True)
class Airflow:
    """One Airflow installation: a venv, and a home with its SQLite database and DAGs folder."""

    python: Path
    home: Path

    @property
    def dags(self) -> Path:
        return self.home / "dags"

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = clean_env() | {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
        }
        return subprocess.run(
            [str(self.python), *args], cwd=self.home, env=env, capture_output=True, text=True, timeout=timeout
        )

    def test_dag(self, dag_id: str) -> tuple[str, dict[str, str]]:
        """`airflow dags test DAG`, then the run's state and every task's state, read from the database."""
        ok(self.run("-m", "airflow", "dags", "test", dag_id))
        return self.last_run(dag_id)

    def last_run(self, dag_id: str) -> tuple[str, dict[str, str]]:
        """The state of the last run of ``dag_id`` and of each of its tasks, read from the database."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            run_id, state = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)))
        return state, tasks


@pytest.fixture(scope="module")
def airflow(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    """A fresh Airflow home in a temp folder, its SQLite database migrated."""
    instance = Airflow(airflow_python, tmp_path_factory.mktemp("airflow-home"))
    instance.dags.mkdir()
    ok(instance.run("-m", "airflow", "db", "migrate", timeout=300))
    return instance


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, export_project: Callable[[Path, str], Project]) -> Project:
    return export_project(tmp_path_factory.mktemp("airflow-project"), "houses")


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.fixture(scope="module")
def trained(airflow: Airflow, project: Project) -> tuple[str, dict[str, str]]:
    """The exported local-mode DAG, run once with `airflow dags test` on the fresh project."""
    done = ok(mloop("export", "airflow", "-o", str(airflow.dags / "mloop_houses.py"), cwd=project.root))
    assert "mloop_houses_monitor" in done.stdout
    return airflow.test_dag("mloop_houses")


def test_the_dag_file_imports_only_airflow(airflow: Airflow, trained: object, project: Project) -> None:
    source = (airflow.dags / "mloop_houses.py").read_text(encoding="utf-8")
    assert imported_modules(source) == {"__future__", "airflow", "datetime"}
    written = {  # the values written at export time: this machine's absolute paths
        node.targets[0].id: node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert written["MLOOP"] == MLOOP_SCRIPT
    assert written["PROJECT_DIR"] == str(project.root)
    assert written["CONFIG"] == "mloop.yaml"


def test_training_dag_runs_every_stage_and_leaves_a_champion(
    trained: tuple[str, dict[str, str]], project: Project
) -> None:
    state, tasks = trained
    assert state == "success"
    assert tasks == dict.fromkeys(TRAINING, "success")
    champion = alias_version(project, CHAMPION)
    assert champion is not None and champion.version == "1"
    assert [v.version for v in list_versions(project)] == ["1"]
    assert list((project.workspace / "snapshots").glob("*.validation.json")), "validate ran on the snapshot"


def test_monitoring_dag_skips_when_there_is_no_traffic(airflow: Airflow, trained: tuple[str, dict[str, str]]) -> None:
    state, tasks = airflow.test_dag("mloop_houses_monitor")
    assert state == "success"
    assert tasks == dict.fromkeys(MONITORING, "skipped")


def _log_traffic(project: Project, ames: pd.DataFrame) -> None:
    """A window of labelled later sales in the prediction log, as the server would have written it."""
    champion = alias_version(project, CHAMPION)
    assert champion is not None
    features = load_contract(project.contract_path).features
    later = ames[ames["Year_Sold"] >= 2008].head(WINDOW)
    rows = []
    for record in later.to_dict("records"):
        values = {f: None if isinstance(record[f], float) and math.isnan(record[f]) else record[f] for f in features}
        price = float(record["Sale_Price"])
        rows.append(
            PredictionRow(uuid.uuid4().hex, utc_now(), champion.version, values, price * 1.05, 1.0, price, utc_now())
        )
    PredictionStore(project.predictions_db).write_many(rows)


def test_monitoring_dag_decides_on_real_traffic(
    airflow: Airflow, trained: tuple[str, dict[str, str]], project: Project, ames: pd.DataFrame
) -> None:
    _log_traffic(project, ames)
    state, tasks = airflow.test_dag("mloop_houses_monitor")
    assert state == "success"
    assert tasks == dict.fromkeys(MONITORING, "success")
    decisions = [e for e in (project.workspace / "audit.jsonl").read_text().splitlines() if '"retrain' in e]
    assert decisions, "retrain --if-needed journaled its decision"


def test_batch_dag_scores_a_table_then_judges_the_scores(
    airflow: Airflow, trained: tuple[str, dict[str, str]], project: Project, ames: pd.DataFrame
) -> None:
    """Later sales, which drift: the drift task succeeds all the same (`monitor --window` exits 0 on drift).
    Relative paths, taken in the project folder; ``--batch-engine local`` so that this Airflow worker needs no
    Spark session: the spark DAG runs the same commands with ``--engine spark`` (tests/unit/export)."""
    incoming = project.root / "incoming" / "later.csv"
    incoming.parent.mkdir()
    ames[ames["Year_Sold"] >= 2009].head(300).to_csv(incoming, index=False)
    done = ok(
        mloop(
            "export", "airflow", "-o", str(airflow.dags / "houses_scoring.py"), "--dag-id", "houses_scoring",
            "--batch-input", "incoming/later.csv", "--batch-output", "scores/batch.parquet",
            "--batch-engine", "local", "--json",
            cwd=project.root,
        )
    )  # fmt: skip
    assert json.loads(done.stdout)["dags"] == ["houses_scoring", "houses_scoring_monitor", "houses_scoring_batch"]
    run = ok(airflow.run("-m", "airflow", "dags", "test", "houses_scoring_batch"))
    state, tasks = airflow.last_run("houses_scoring_batch")
    assert state == "success"
    assert tasks == dict.fromkeys(BATCH, "success")
    scores = pd.read_parquet(project.root / "scores" / "batch.parquet")
    assert len(scores) == 300 and scores["prediction"].notna().all()
    log = " ".join((run.stdout + run.stderr).split())
    assert "300 rows of scores/batch.parquet (local engine): drift on" in log, log[-3000:]


KUBERNETES_CHECK = textwrap.dedent(
    """
    import json, sys
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])  # examples: off by AIRFLOW__CORE__LOAD_EXAMPLES
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in bag.dags.items():
        tasks = []
        for task in dag.topological_sort():
            pod = {"id": task.task_id, "operator": type(task).__name__, "upstream": sorted(task.upstream_task_ids)}
            for name in ("image", "cmds", "arguments", "namespace", "service_account_name", "skip_on_exit_code"):
                value = getattr(task, name, None)
                pod[name] = sorted(value) if isinstance(value, set) else value
            pod["volumes"] = [v.to_dict() for v in task.volumes]
            pod["mounts"] = [m.to_dict() for m in task.volume_mounts]
            pod["env_from"] = [e.to_dict() for e in task.env_from or []]
            pod["security_context"] = task.security_context.to_dict()
            tasks.append(pod)
        out["dags"][dag_id] = {"schedule": getattr(dag, "schedule", None), "params": dict(dag.params), "tasks": tasks}
    print(json.dumps(out, default=str))
    """
)


def test_kubernetes_dag_imports_cleanly(airflow: Airflow, project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "k8s-dags"
    ok(
        mloop(
            "export", "airflow", "--mode", "kubernetes", "-o", str(folder / "mloop_houses_k8s.py"),
            "--image", "registry.example.com/ml/mloop:0.1.0", "--namespace", "ml", "--pvc", "houses-data",
            "--configmap", "houses-config", "--secret", "mlflow-s3", "--secret", "db-url",
            "--service-account", "mloop-trainer", "--schedule", "0 3 * * 0", "--dag-id", "houses_k8s",
            cwd=project.root,
        )
    )  # fmt: skip
    done = ok(airflow.run("-c", KUBERNETES_CHECK, str(folder)))
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert set(found["dags"]) == {"houses_k8s", "houses_k8s_monitor"}
    train = found["dags"]["houses_k8s"]
    assert train["schedule"] == "0 3 * * 0"
    assert found["dags"]["houses_k8s_monitor"]["schedule"] == "@hourly"
    assert [t["id"] for t in train["tasks"]] == TRAINING
    assert [t["upstream"] for t in train["tasks"]] == [[], *([s] for s in TRAINING[:-1])]
    first = train["tasks"][0]
    assert first["operator"] == "KubernetesPodOperator"
    assert first["image"] == "{{ params.image }}"
    assert train["params"]["image"] == "registry.example.com/ml/mloop:0.1.0"
    assert first["cmds"] == ["mloop"]
    assert first["arguments"] == ["-c", "/project/mloop.yaml", "ingest"]
    assert (first["namespace"], first["service_account_name"]) == ("ml", "mloop-trainer")
    assert first["volumes"][0]["persistent_volume_claim"]["claim_name"] == "houses-data"
    assert first["volumes"][1]["config_map"]["name"] == "houses-config"
    assert {m["mount_path"] for m in first["mounts"]} == {"/project", "/project/mloop.yaml"}
    assert [e["secret_ref"]["name"] for e in first["env_from"]] == ["mlflow-s3", "db-url"]
    assert first["security_context"]["fs_group"] == 10001  # the image's group can write to the claim
    assert first["security_context"]["run_as_non_root"] is True
    monitor = found["dags"]["houses_k8s_monitor"]["tasks"]
    assert [t["arguments"][2:] for t in monitor] == [["monitor"], ["retrain", "--if-needed"]]
    assert all(t["skip_on_exit_code"] == [9] for t in monitor)


def test_kubernetes_batch_dag_imports_cleanly(airflow: Airflow, project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "k8s-batch-dags"
    ok(
        mloop(
            "export", "airflow", "--mode", "kubernetes", "-o", str(folder / "houses_nightly.py"),
            "--dag-id", "houses_nightly", "--batch-input", "data/incoming", "--batch-output", "s3a://ml-scores/houses",
            "--batch-schedule", "0 2 * * *",
            cwd=project.root,
        )
    )  # fmt: skip
    done = ok(airflow.run("-c", KUBERNETES_CHECK, str(folder)))
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert set(found["dags"]) == {"houses_nightly", "houses_nightly_monitor", "houses_nightly_batch"}
    batch = found["dags"]["houses_nightly_batch"]
    assert batch["schedule"] == "0 2 * * *"
    assert [t["id"] for t in batch["tasks"]] == BATCH
    assert [t["upstream"] for t in batch["tasks"]] == [[], ["score"]]
    assert [t["arguments"] for t in batch["tasks"]] == [
        ["-c", "/project/mloop.yaml", "score", "{{ params.batch_input }}", "-o", "{{ params.batch_output }}"]
        + ["--engine", "spark"],
        ["-c", "/project/mloop.yaml", "monitor", "--window", "{{ params.batch_output }}", "--engine", "spark"],
    ]
    assert all(t["cmds"] == ["mloop"] and t["operator"] == "KubernetesPodOperator" for t in batch["tasks"])
    assert all(not t["skip_on_exit_code"] for t in batch["tasks"])  # a drifted table exits 0: nothing is skipped
    assert batch["params"]["batch_input"] == "/project/data/incoming"  # relative: on the project's claim
    assert batch["params"]["batch_output"] == "s3a://ml-scores/houses"
    assert batch["params"]["image"] == options.DEFAULT_IMAGE
    assert "batch_input" not in found["dags"]["houses_nightly"]["params"]
