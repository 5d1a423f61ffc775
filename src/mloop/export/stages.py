"""The pipeline's stages as mloop commands: what `mloop export` puts on an orchestrator.

Both exports (Airflow, Kubeflow) run these same commands, in this order, on one project folder; each
stage is one task, so a failure shows where the loop stopped and a re-run starts from there.
"""

from __future__ import annotations

from dataclasses import dataclass

# `mloop monitor` and `mloop retrain --if-needed` exit with MonitorError's code (mloop.cli.main.EXIT_CODES)
# when the prediction log has no window yet: an orchestrator marks that task skipped, not failed (no traffic
# is no error). export may not import cli, so the number is repeated here; a test keeps the two equal.
NO_TRAFFIC_EXIT_CODE = 9


@dataclass(frozen=True)
class Stage:
    """One task: its id on the orchestrator, the mloop arguments it runs and a line for the task docs."""

    name: str
    args: tuple[str, ...]
    doc: str
    skip_exit_codes: tuple[int, ...] = ()

    def as_literal(self) -> tuple[str, tuple[str, ...], str, tuple[int, ...]]:
        """Plain values only, for a generated file that must not import mloop."""
        return self.name, self.args, self.doc, self.skip_exit_codes


# What `mloop run` does, one command per stage (the stages of the project's dvc.yaml too).
TRAINING: tuple[Stage, ...] = (
    Stage("ingest", ("ingest",), "Read data.source into a new content-addressed snapshot."),
    Stage("validate", ("validate",), "Check the latest snapshot against the data contract; quarantine it if it fails."),
    Stage("train", ("train",), "Train on the latest valid snapshot and log the run to MLflow."),
    Stage("register", ("register",), "Register the latest training run as a new model version."),
    Stage("promote", ("promote",), "Gate the new version against the champion; promote it only if it wins."),
)

# The monitoring loop a cron job runs: drift and quality of the latest window, then the retraining policy.
MONITORING: tuple[Stage, ...] = (
    Stage(
        "monitor",
        ("monitor",),
        "Drift and quality of the latest window of the prediction log.",
        (NO_TRAFFIC_EXIT_CODE,),
    ),
    Stage(
        "retrain",
        ("retrain", "--if-needed"),
        "Retrain when the policy calls for it; the gate decides promotion.",
        (NO_TRAFFIC_EXIT_CODE,),
    ),
)

PIPELINES: dict[str, tuple[Stage, ...]] = {"train": TRAINING, "monitor": MONITORING}

ENGINES = ("local", "spark")


def batch(source: str, output: str, engine: str) -> tuple[Stage, ...]:
    """The batch-scoring pipeline: score a stored table, then judge the scored table's drift.

    ``source`` and ``output`` are what the orchestrator puts in the command (a path, or a reference to a
    parameter). ``mloop monitor --window`` exits 0 on a drifted window as on a quiet one (the drift is in its
    report, not its exit code), so neither task is ever marked skipped: any other exit code is a failure.
    """
    return (
        Stage(
            "score",
            ("score", source, "-o", output, "--engine", engine),
            "Score every row of the input table with the champion; the scores (input columns + prediction) go to "
            "the output." + (" Rows the contract rejects go to OUTPUT_rejects." if engine == "spark" else ""),
        ),
        Stage(
            "drift",
            ("monitor", "--window", output, "--engine", engine),
            "Drift of the scored table against the champion's training reference (a drifted table is reported, "
            "not failed).",
        ),
    )
