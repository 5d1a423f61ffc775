"""The champion the server answers with, and the reloader that swaps in a new one when the alias moves.

A loaded model is an immutable ``LoadedModel``; the holder swaps its reference in one assignment, so
a request that picked up the old model finishes with it while the next request gets the new one. The
old champion keeps serving until the new one has loaded and answered a probe; a version that fails to
load is logged and retried later, and the old champion stays.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from mloop.data.contract import Contract, coerce_frame
from mloop.data.predictions import utc_now
from mloop.errors import ServeError
from mloop.project import Project
from mloop.registry.gate import version_contract
from mloop.registry.versions import CHAMPION, VersionInfo, alias_version, load_model
from mloop.serve.schemas import build_request_model

log = logging.getLogger(__name__)

RETRY_FAILED_SECONDS = 30.0  # a version that failed to load is tried again after this long
OMP_THREADS_ENV = "OMP_NUM_THREADS"
_thread = threading.local()


def limit_openmp_in_this_thread() -> None:
    """Cap OpenMP threads for predictions made on the calling thread (OMP_NUM_THREADS, default 1).

    The server scores many small requests at once on a thread pool; an OpenMP team per prediction
    only adds contention (measured: several times slower under load). The environment variable alone
    is not enough: the OpenMP runtime reads it once, when first loaded, and a limit set later applies
    per thread, so each worker thread sets it for itself, once.
    """
    if getattr(_thread, "openmp_limited", False):
        return
    _thread.openmp_limited = True
    value = os.environ.get(OMP_THREADS_ENV, "")
    threads = int(value) if value.isdigit() and int(value) > 0 else 1
    threadpool_limits(limits=threads, user_api="openmp")


@dataclass(frozen=True)
class Scored:
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to score: its pipeline, its own contract and request model."""

    info: VersionInfo
    pipeline: Any
    contract: Contract
    request_model: type[BaseModel]
    task: str
    classes: list[str] | None
    alias: str
    loaded_at: str

    @property
    def version(self) -> str:
        return self.info.version

    def score(self, frame: pd.DataFrame) -> Scored:
        """Predictions (and class probabilities) for rows already typed by ``coerce_frame``."""
        limit_openmp_in_this_thread()
        predictions = np.asarray(self.pipeline.predict(frame))
        values: list[Any] = (
            [str(v) for v in predictions] if self.task == "classification" else predictions.astype(float).tolist()
        )
        probabilities = None
        if self.classes is not None and hasattr(self.pipeline, "predict_proba"):
            proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float)
            probabilities = [dict(zip(self.classes, row.tolist(), strict=True)) for row in proba]
        return Scored(values, probabilities)


def _probe_frame(contract: Contract) -> pd.DataFrame:
    """One plausible record (mid-range numbers, known categories) to check a model answers at all."""
    record: dict[str, Any] = {}
    for name in contract.features:
        spec = contract.columns[name]
        if spec.categories:
            record[name] = spec.categories[0]
        elif spec.min is not None and spec.max is not None:
            record[name] = (spec.min + spec.max) / 2
        else:
            record[name] = 0 if spec.dtype in ("integer", "float", "boolean") else None
    return coerce_frame(pd.DataFrame([record]), contract)


def load_version(project: Project, info: VersionInfo, alias: str = CHAMPION) -> LoadedModel:
    """Load ``info``'s pipeline and contract and make sure it can score before anyone relies on it."""
    pipeline = load_model(project, info.version)
    contract = version_contract(project, info)
    task = info.tags.get("mloop.task", project.config.task)
    classes = [str(c) for c in getattr(pipeline, "classes_", [])] if task == "classification" else None
    model = LoadedModel(
        info=info,
        pipeline=pipeline,
        contract=contract,
        request_model=build_request_model(contract),
        task=task,
        classes=classes or None,
        alias=alias,
        loaded_at=utc_now(),
    )
    try:
        model.score(_probe_frame(contract))
    except Exception as exc:  # any failure here means the version is unusable
        raise ServeError(f"version {info.version} cannot score a probe record: {exc}") from None
    return model


SwapCallback = Callable[["LoadedModel | None", LoadedModel], None]


class ModelHolder:
    """Holds the champion and, once started, polls the registry for a new one."""

    def __init__(self, project: Project, on_swap: SwapCallback | None = None) -> None:
        self.project = project
        self.interval = project.config.serve.reload_interval_seconds
        self._on_swap = on_swap
        self._current: LoadedModel | None = None
        self._reason = "the champion model has not been loaded yet; the server is starting"
        self._failed: tuple[str, float] | None = None  # (version, when) of the last failed load
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one refresh at a time: startup and the reloader never race

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def reason(self) -> str:
        """Why no model is loaded (meaningful only while ``current`` is None)."""
        return self._reason

    def refresh(self) -> bool:
        """Look up the champion and load it if it changed; True if a new model was swapped in."""
        with self._lock:
            try:
                info = alias_version(self.project, CHAMPION)
            except Exception as exc:  # a registry outage must not stop the server starting or serving
                return self._keep(f"cannot reach the model registry: {exc}")
            if info is None:
                return self._keep(
                    f"model {self.project.name!r} has no version with alias {CHAMPION!r}; train and promote one "
                    "(`mloop run`, or `mloop promote VERSION`)"
                )
            current = self._current
            if current is not None and current.version == info.version:
                self._reason = ""  # healthy again: the next problem is worth a log line
                return False
            if (
                self._failed
                and self._failed[0] == info.version
                and time.monotonic() - self._failed[1] < RETRY_FAILED_SECONDS
            ):
                return False
            return self._load(info, current)

    def _keep(self, reason: str) -> bool:
        if self._current is None:
            if reason != self._reason:
                log.warning("no model to serve: %s", reason)
            self._reason = reason
        elif reason != self._reason:
            log.warning("keeping version %s: %s", self._current.version, reason)
            self._reason = reason
        return False

    def _load(self, info: VersionInfo, current: LoadedModel | None) -> bool:
        started = time.perf_counter()
        try:
            loaded = load_version(self.project, info)
        except Exception as exc:  # the old champion must keep serving whatever went wrong
            self._failed = (info.version, time.monotonic())
            kept = f"; version {current.version} keeps serving" if current else ""
            log.error("cannot load champion version %s%s: %s", info.version, kept, exc)
            if current is None:
                self._reason = f"cannot load champion version {info.version}: {exc}"
            return False
        self._failed = None
        self._current = loaded
        log.info(
            "serving %s version %s (was %s), loaded in %.1fs",
            self.project.name,
            info.version,
            current.version if current else "none",
            time.perf_counter() - started,
        )
        if self._on_swap is not None:
            self._on_swap(current, loaded)
        return True

    # ------------------------------------------------------------------------------- reloader

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="mloop-model-reloader", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # never let the reloader die: the next poll tries again
                log.exception("model reload check failed")


__all__ = ["LoadedModel", "ModelHolder", "Scored", "load_version"]
