"""The Kubeflow components: one self-contained function per stage, run in the mloop image.

kfp ships each function's source into its container, so every function imports what it uses and
calls only the mloop command. No ``from __future__ import annotations`` here: kfp reads the
annotations as types. Each stage hands the next one what it made (snapshot hash → training run →
model version), so a run never picks up another run's result from the shared project folder.
"""

from typing import Any


def ingest(mloop: str, project_dir: str, config: str, config_from: str) -> str:
    """Read data.source into a new content-addressed snapshot; returns its hash."""
    import json
    import os
    import shutil
    import subprocess

    if config_from:  # the config comes from a ConfigMap: the project folder gets the current one
        shutil.copyfile(config_from, os.path.join(project_dir, config))
    command = [mloop, "-c", config, "ingest", "--json"]
    out = subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout  # noqa: S603
    print(out)  # noqa: T201 - the task's log
    return str(json.loads(out)["hash"])


def validate(mloop: str, project_dir: str, config: str, snapshot: str) -> str:
    """Check the snapshot against the data contract (a failing one is quarantined); returns its hash."""
    import subprocess

    command = [mloop, "-c", config, "validate", snapshot, "--json"]
    print(subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout)  # noqa: S603, T201
    return snapshot


def train(mloop: str, project_dir: str, config: str, snapshot: str) -> str:
    """Train on the validated snapshot and log the run to MLflow; returns the run id."""
    import json
    import subprocess

    command = [mloop, "-c", config, "train", "--snapshot", snapshot, "--json"]
    out = subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout  # noqa: S603
    print(out)  # noqa: T201
    return str(json.loads(out)["run_id"])


def register(mloop: str, project_dir: str, config: str, run_id: str) -> str:
    """Register the training run as a new model version; returns the version."""
    import json
    import subprocess

    command = [mloop, "-c", config, "register", "--run-id", run_id, "--json"]
    out = subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout  # noqa: S603
    print(out)  # noqa: T201
    return str(json.loads(out)["version"])


def promote(mloop: str, project_dir: str, config: str, version: str) -> str:
    """Gate the version against the champion and promote it if it wins; returns the gate's decision (JSON)."""
    import subprocess

    command = [mloop, "-c", config, "promote", version, "--json"]
    out = subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout  # noqa: S603
    print(out)  # noqa: T201
    return out


def monitor(mloop: str, project_dir: str, config: str, config_from: str) -> str:
    """Drift and quality of the latest window of the prediction log (JSON); 'no traffic' when there is none."""
    import os
    import shutil
    import subprocess

    if config_from:
        shutil.copyfile(config_from, os.path.join(project_dir, config))
    command = [mloop, "-c", config, "monitor", "--json"]
    done = subprocess.run(command, cwd=project_dir, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603
    print(done.stdout)  # noqa: T201
    if done.returncode == 9:  # mloop's MonitorError: no window of traffic yet, which is no failure
        return "no traffic"
    if done.returncode != 0:
        raise RuntimeError(f"mloop monitor failed with exit code {done.returncode}")
    return done.stdout


def retrain(mloop: str, project_dir: str, config: str, window: str) -> str:
    """Retrain if the policy calls for it (the gate decides promotion); returns the decision (JSON)."""
    import subprocess

    if window == "no traffic":
        print("no traffic to monitor yet: nothing to decide")  # noqa: T201
        return window
    command = [mloop, "-c", config, "retrain", "--if-needed", "--json"]
    done = subprocess.run(command, cwd=project_dir, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603
    print(done.stdout)  # noqa: T201
    if done.returncode == 9:
        return "no traffic"
    if done.returncode != 0:
        raise RuntimeError(f"mloop retrain --if-needed failed with exit code {done.returncode}")
    return done.stdout


def score(mloop: str, project_dir: str, config: str, config_from: str, source: str, output: str, engine: str) -> str:
    """Score every row of the table at ``source`` into ``output`` (Spark: bad rows beside it); returns ``output``."""
    import os
    import shutil
    import subprocess

    if config_from:
        shutil.copyfile(config_from, os.path.join(project_dir, config))
    command = [mloop, "-c", config, "score", source, "-o", output, "--engine", engine, "--json"]
    print(subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout)  # noqa: S603, T201
    return output


def drift(mloop: str, project_dir: str, config: str, window: str, engine: str) -> str:
    """Drift of the scored table against the champion's reference (JSON); a drifted table exits 0, no failure."""
    import subprocess

    command = [mloop, "-c", config, "monitor", "--window", window, "--engine", engine, "--json"]
    out = subprocess.run(command, cwd=project_dir, check=True, stdout=subprocess.PIPE, text=True).stdout  # noqa: S603
    print(out)  # noqa: T201
    return out


def components(dsl: Any, image: str, install_kfp: bool = True) -> dict[str, Any]:
    """Each stage function as a kfp component running in ``image``; ``install_kfp``: pip-install kfp's
    executor when the step starts (off for an image built with ``mloop[kubeflow]``)."""
    functions = (ingest, validate, train, register, promote, monitor, retrain, score, drift)
    return {f.__name__: dsl.component(f, base_image=image, install_kfp_package=install_kfp) for f in functions}


def train_pipeline(dsl: Any, comps: dict[str, Any], name: str, defaults: dict[str, str], tune: Any) -> Any:
    """ingest → validate → train → register → promote; ``tune(task, stage)`` adds mounts, retries and names."""

    def pipeline(
        project_dir: str = defaults["project_dir"],
        config: str = defaults["config"],
        mloop: str = defaults["mloop"],
        config_from: str = defaults["config_from"],
    ) -> None:
        common = {"mloop": mloop, "project_dir": project_dir, "config": config}
        ingested = tune(comps["ingest"](config_from=config_from, **common), "ingest")
        validated = tune(comps["validate"](snapshot=ingested.output, **common), "validate")
        trained = tune(comps["train"](snapshot=validated.output, **common), "train")
        registered = tune(comps["register"](run_id=trained.output, **common), "register")
        tune(comps["promote"](version=registered.output, **common), "promote")

    pipeline.__doc__ = "mloop: ingest, validate, train, register, promote through the gate."
    return dsl.pipeline(pipeline, name=name)


def monitor_pipeline(dsl: Any, comps: dict[str, Any], name: str, defaults: dict[str, str], tune: Any) -> Any:
    """monitor → retrain --if-needed."""

    def pipeline(
        project_dir: str = defaults["project_dir"],
        config: str = defaults["config"],
        mloop: str = defaults["mloop"],
        config_from: str = defaults["config_from"],
    ) -> None:
        common = {"mloop": mloop, "project_dir": project_dir, "config": config}
        window = tune(comps["monitor"](config_from=config_from, **common), "monitor")
        tune(comps["retrain"](window=window.output, **common), "retrain")

    pipeline.__doc__ = "mloop: monitor the latest window of traffic, retrain if the policy calls for it."
    return dsl.pipeline(pipeline, name=name)


def batch_pipeline(dsl: Any, comps: dict[str, Any], name: str, defaults: dict[str, str], tune: Any) -> Any:
    """score → drift: the scored table is the window the drift step judges."""

    def pipeline(
        project_dir: str = defaults["project_dir"],
        config: str = defaults["config"],
        mloop: str = defaults["mloop"],
        config_from: str = defaults["config_from"],
        batch_input: str = defaults["batch_input"],
        batch_output: str = defaults["batch_output"],
        engine: str = defaults["engine"],
    ) -> None:
        common = {"mloop": mloop, "project_dir": project_dir, "config": config}
        scored = comps["score"](
            config_from=config_from, source=batch_input, output=batch_output, engine=engine, **common
        )
        tune(scored, "score")
        tune(comps["drift"](window=scored.output, engine=engine, **common), "drift")

    pipeline.__doc__ = "mloop: score a stored table with the champion, then the drift of the scored table."
    return dsl.pipeline(pipeline, name=name)
