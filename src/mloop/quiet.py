"""Keep the libraries' progress bars, logs and warnings out of what a command prints.

mloop shows its own progress; MLflow's tqdm bars ("Downloading artifacts", one per model load), its
INFO logs, alembic's migration lines and the deprecation or future warnings of its dependencies are
noise to a user and break ``> log`` files. ``mloop -v`` skips all of this, so the libraries speak again.

Environment variables are set (without overriding what a user set) so the processes mloop starts, the
demo's server for one, are quiet too. This runs before any heavy library is imported: MLflow reads
its logging level when it is first imported.
"""

from __future__ import annotations

import logging
import os
import warnings

QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # tqdm bars on every artifact download
    "MLFLOW_LOGGING_LEVEL": "ERROR",  # read once, when mlflow is imported
    "GIT_PYTHON_REFRESH": "quiet",  # MLflow's git lookup warns when git is missing
    "TQDM_DISABLE": "1",  # any other library's tqdm bar (optuna's is off unless asked for)
    "PYTHONWARNINGS": "ignore",  # child Python processes, before their first import
}
# Loggers that print at INFO or WARNING on ordinary use, and were never meant for the user of a CLI.
LIBRARY_LOGGERS = ("mlflow", "alembic", "dvc", "optuna", "urllib3", "git", "matplotlib", "py4j")
# Loggers whose ERROR lines (with a traceback) only announce an exception that is raised on to mloop, which
# then says what failed in one line: MLflow's SQL store logs every database error it re-raises.
RERAISING_LOGGERS = ("mlflow.store.db.utils",)


def quiet_libraries() -> None:
    """Silence third-party output for the rest of this process and its children."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in RERAISING_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")


__all__ = ["LIBRARY_LOGGERS", "QUIET_ENV", "RERAISING_LOGGERS", "quiet_libraries"]
