"""Checks on what `mloop export` writes into a generated file: each bad value gets a clear error."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePosixPath

from mloop.errors import ExportError


def mloop_version() -> str:
    """The installed mloop's version (not ``mloop.__version__``: importing the root package reaches every layer)."""
    try:
        return version("mloop")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
        return "latest"


# Tag a build of deploy/docker/Dockerfile so, or pass --image.
DEFAULT_IMAGE = f"mloop:{mloop_version()}"

# Airflow's schedule presets; "none" (or an empty value) means triggered by hand or by the API only.
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")

_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # Airflow's rule for DAG and task ids
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
# An image reference: [registry[:port]/]path[:tag][@digest], path components lowercase.
_IMAGE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def schedule(value: str | None, option: str = "--schedule") -> str | None:
    """A cron expression, an Airflow preset, or None for 'none'/empty (runs only when triggered)."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    text = " ".join(value.split())
    if text.startswith("@"):
        if text not in SCHEDULE_PRESETS:
            raise ExportError(f"{option} {value!r} is not a schedule preset; use one of {', '.join(SCHEDULE_PRESETS)}.")
        return text
    from croniter import croniter  # here: the CLI imports this module to show its defaults in --help

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ExportError(
            f"{option} {value!r} is not a cron expression (five fields, e.g. '0 3 * * 0'), "
            f"a preset ({', '.join(SCHEDULE_PRESETS)}) or 'none'."
        )
    return text


def dag_id(value: str, option: str = "--dag-id") -> str:
    if not _DAG_ID.match(value):
        raise ExportError(
            f"{option} {value!r} is not a valid Airflow DAG id: use letters, digits, '_', '.' and '-' "
            "(at most 250 characters)."
        )
    return value


def default_dag_id(project_name: str) -> str:
    """``mloop_<project>`` with every character Airflow refuses replaced by '_'."""
    return "mloop_" + re.sub(r"[^A-Za-z0-9_.-]", "_", project_name)[:200]


def k8s_name(value: str, option: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain: PVC, ConfigMap, Secret, service account)."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ExportError(
            f"{option} {value!r} is not a Kubernetes object name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit."
        )
    return value


def namespace(value: str, option: str = "--namespace") -> str:
    """A Kubernetes namespace (DNS-1123 label: at most 63 characters, no dots)."""
    if not re.fullmatch(_DNS_LABEL, value):
        raise ExportError(
            f"{option} {value!r} is not a Kubernetes namespace: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit."
        )
    return value


def config_key(value: str, option: str = "--config-key") -> str:
    if not _CONFIG_KEY.match(value):
        raise ExportError(f"{option} {value!r} is not a ConfigMap key: use letters, digits, '-', '_' and '.'.")
    return value


def image(value: str, option: str = "--image") -> str:
    if len(value) > 255 or not _IMAGE.match(value):
        raise ExportError(
            f"{option} {value!r} is not a container image reference; expected [registry/]name[:tag][@sha256:digest], "
            "e.g. 'registry.example.com/mloop:0.1.0'."
        )
    return value


def absolute_path(value: str, option: str) -> str:
    """An absolute POSIX path without control characters (it becomes a path on another machine or pod)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):  # DEL is a control character too
        raise ExportError(f"{option} {value!r} contains a control character.")
    if not PurePosixPath(value).is_absolute():
        raise ExportError(f"{option} {value!r} must be an absolute path.")
    return value


def retries(value: int, option: str = "--retries") -> int:
    if not 0 <= value <= 10:
        raise ExportError(f"{option} {value} is out of range; use 0 to 10.")
    return value


_LOCAL_OUTPUTS = (".csv", ".csv.gz", ".parquet", ".pq")  # what `mloop score` writes in process (serve.batch)


def batch_paths(source: str | None, output: str | None, engine: str) -> tuple[str, str] | None:
    """The batch pipeline's input and output, checked; None when neither is given (no batch pipeline).

    A path is written as given: a relative one is taken relative to the project folder, where every stage runs.
    A URI (``s3a://``, ``abfss://``, ``dbfs://``) is passed to the engine as it is.
    """
    from mloop.export.stages import ENGINES

    if source is None and output is None:
        return None
    if source is None or output is None:
        given, missing = ("--batch-input", "--batch-output") if output is None else ("--batch-output", "--batch-input")
        raise ExportError(
            f"{given} needs {missing} too: the batch pipeline scores the table at --batch-input into "
            "--batch-output, then judges the scored table's drift; pass both, or neither for no batch pipeline."
        )
    if engine not in ENGINES:
        raise ExportError(f"--batch-engine {engine!r} is not one of {', '.join(ENGINES)}.")
    for value, option in ((source, "--batch-input"), (output, "--batch-output")):
        if not value.strip():
            raise ExportError(
                f"{option} is empty; give the path of a table (relative to the project folder or absolute)."
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ExportError(f"{option} {value!r} contains a control character.")
        if value.startswith("-"):
            raise ExportError(
                f"{option} {value!r} starts with '-', which mloop would read as an option; write ./{value}."
            )
        if "{{" in value or "{%" in value:
            raise ExportError(
                f"{option} {value!r} contains a Jinja template; pass a plain path (a run can override it in its conf)."
            )
    if _normal(source) == _normal(output):
        raise ExportError(f"--batch-output {output!r} is --batch-input too: scoring would overwrite its own input.")
    if engine == "local" and not output.lower().endswith(_LOCAL_OUTPUTS):
        raise ExportError(
            f"--batch-output {output!r}: with --batch-engine local the scores are one file; "
            f"end its name in {', '.join(_LOCAL_OUTPUTS)} (Spark writes a folder of Parquet files)."
        )
    return source, output


def _normal(path: str) -> str:
    return path if "://" in path else str(PurePosixPath(path)).rstrip("/")


def in_folder(path: str, folder: str) -> str:
    """``path`` as it is seen from ``folder``: a relative one joined to it, an absolute path or a URI unchanged."""
    if "://" in path or PurePosixPath(path).is_absolute():
        return path
    return str(PurePosixPath(folder) / path)
