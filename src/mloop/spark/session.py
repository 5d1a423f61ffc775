"""The Spark session of ``--engine spark``: the active one, a Spark Connect remote, or one mloop starts.

An application that already runs Spark (a Databricks notebook, a ``spark-submit`` job calling mloop's
functions) keeps its session: mloop uses the active one and never stops it. Otherwise ``spark.remote`` or
``SPARK_REMOTE`` names a Spark Connect server, and failing both mloop starts a session on ``spark.master``
(``local[*]`` by default) with ``spark.conf`` applied. A local session binds 127.0.0.1 and has no web UI,
as every mloop server binds 127.0.0.1 by default; its Python workers run this interpreter, so they import
the same mloop and libraries as the driver.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import TYPE_CHECKING

from mloop.config import SparkConfig
from mloop.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL = "pip install 'mloop[spark]'"
JAVA = "Spark needs Java 17 or newer: install it (Debian: apt-get install default-jre-headless) or set JAVA_HOME"
# Settings of a session mloop starts locally, under what spark.conf sets.
LOCAL_DEFAULTS = {
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "ERROR",
    "spark.sql.session.timeZone": "UTC",
}


def quiet_pyspark() -> None:
    """PySpark 4 warns on every Arrow call that it "does not yet fully support pandas >= 3"; mloop's Spark
    functions exchange Arrow batches, not pandas frames, so the warning says nothing about them."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def spark_session(settings: SparkConfig) -> SparkSession:
    """The session to run on: the active one, else ``remote``/``SPARK_REMOTE``, else a new one on ``master``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(f"engine: spark needs pyspark; install it with {INSTALL}.") from None
    quiet_pyspark()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = settings.remote or os.environ.get("SPARK_REMOTE")
    builder = SparkSession.builder.appName(settings.app_name)
    if remote:
        builder = builder.remote(remote)
    else:
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise ConfigError(JAVA + ".")
        builder = builder.master(settings.master)
        if settings.master.startswith("local"):
            # Workers are started by the JVM; without this they run whatever `python3` is on PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            for key, value in LOCAL_DEFAULTS.items():
                builder = builder.config(key, value)
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j and PySpark raise their own types, none shared; all mean "no session"
        where = remote or settings.master
        raise ConfigError(f"Cannot start a Spark session on {where}: {str(exc).splitlines()[0]}") from None
