"""The champion the server answers with, and the reloader that swaps in a new one when the alias moves.

A loaded model is an immutable ``LoadedModel``; the holder swaps its reference in one assignment, so
a request that picked up the old model finishes with it while the next request gets the new one. The
old champion keeps serving until the new one has loaded and answered a probe; a version that fails to
load is logged and retried later, and the old champion stays.
"""

from __future__ import annotations

import hmac
import logging
import os
import tempfile
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
from mloop.registry.gate import holdout_of, version_contract
from mloop.registry.versions import (
    ARTIFACT_HASH_TAG,
    CHALLENGER,
    CHAMPION,
    VersionInfo,
    alias_version,
    artifact_sha256,
    load_model,
)
from mloop.serve.fastpath import (
    MAX_RELATIVE_ERROR,
    CompiledPipeline,
    FastPathReport,
    NotCompilable,
    compile_pipeline,
    verify,
)
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
    fast: CompiledPipeline | None = None
    fast_path: FastPathReport = FastPathReport(False, "not compiled")
    artifact_sha256: str | None = None  # checked against the registration's hash before loading

    @property
    def version(self) -> str:
        return self.info.version

    def score(self, frame: pd.DataFrame) -> Scored:
        """Predictions (and class probabilities) of the plain pipeline for rows typed by ``coerce_frame``."""
        limit_openmp_in_this_thread()
        proba = None
        if self.classes is not None and hasattr(self.pipeline, "predict_proba"):
            proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float)
        return self._scored(np.asarray(self.pipeline.predict(frame)), proba)

    def score_records(self, records: list[dict[str, Any]]) -> Scored:
        """Predictions for validated records: the compiled path if verified, else the plain pipeline."""
        if self.fast is None:
            return self.score(coerce_frame(pd.DataFrame(records), self.contract))
        limit_openmp_in_this_thread()
        predictions, proba = self.fast.scores(records, proba=self.classes is not None)
        return self._scored(predictions, proba)

    def _scored(self, predictions: np.ndarray, proba: np.ndarray | None) -> Scored:
        values: list[Any] = (
            [str(v) for v in predictions] if self.task == "classification" else predictions.astype(float).tolist()
        )
        probabilities = None
        if proba is not None and self.classes is not None:
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


def load_checked(project: Project, info: VersionInfo) -> tuple[Any, str | None]:
    """The pipeline of ``info``, loaded only if its files hash to what registration recorded; and that hash.

    Unpickling a model runs code, so the files are downloaded, hashed and compared first, and the
    pipeline is loaded from exactly the files that were hashed. A version registered without a hash
    (before mloop recorded one, or by another tool) loads with a warning, or is refused with
    ``serve.require_artifact_hash``.
    """
    expected = info.tags.get(ARTIFACT_HASH_TAG)
    if expected is None:
        if project.config.serve.require_artifact_hash:
            raise ServeError(
                f"version {info.version} has no {ARTIFACT_HASH_TAG} tag and serve.require_artifact_hash is on; "
                "register it with mloop (`mloop register`) so its files are hashed"
            )
        log.warning(
            "version %s has no %s tag: its files cannot be checked before loading", info.version, ARTIFACT_HASH_TAG
        )
        return load_model(project, info.version), None
    import mlflow

    from mloop.tracking.store import connect

    with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
        connect(project)
        try:
            local = mlflow.artifacts.download_artifacts(f"models:/{project.name}/{info.version}", dst_path=tmp)
        except Exception as exc:  # noqa: BLE001 - any failure to fetch the files refuses the version
            raise ServeError(f"cannot download the files of version {info.version}: {exc}") from None
        actual = artifact_sha256(local)
        if not hmac.compare_digest(actual, expected):
            raise ServeError(
                f"the files of version {info.version} do not match the hash recorded at registration "
                f"({ARTIFACT_HASH_TAG} {expected[:16]}…, the files now {actual[:16]}…): not loaded, since a "
                "pickled model runs code when loaded. The artifact was changed after registration."
            )
        try:
            return mlflow.sklearn.load_model(local), actual
        except Exception as exc:  # noqa: BLE001 - as load_model: the version cannot be served
            raise ServeError(f"cannot load version {info.version} of {project.name!r}: {exc}") from None


def load_version(project: Project, info: VersionInfo, alias: str = CHAMPION) -> LoadedModel:
    """Load ``info``'s pipeline and contract and make sure it can score before anyone relies on it."""
    pipeline, sha256 = load_checked(project, info)
    contract = version_contract(project, info)
    task = info.tags.get("mloop.task", project.config.task)
    classes = [str(c) for c in getattr(pipeline, "classes_", [])] if task == "classification" else None
    fast, report = _compile_and_verify(project, info, pipeline, contract, task)
    model = LoadedModel(
        info=info,
        pipeline=pipeline,
        contract=contract,
        request_model=build_request_model(contract),
        task=task,
        classes=classes or None,
        alias=alias,
        loaded_at=utc_now(),
        fast=fast,
        fast_path=report,
        artifact_sha256=sha256,
    )
    try:
        model.score(_probe_frame(contract))
    except Exception as exc:  # any failure here means the version is unusable
        raise ServeError(f"version {info.version} cannot score a probe record: {exc}") from None
    return model


def _compile_and_verify(
    project: Project, info: VersionInfo, pipeline: Any, contract: Contract, task: str
) -> tuple[CompiledPipeline | None, FastPathReport]:
    """The compiled pipeline if it reproduces the plain one on the holdout; otherwise None and why."""
    if not project.config.serve.fast_path:
        return None, FastPathReport(False, "disabled by serve.fast_path: false")
    try:
        compiled = compile_pipeline(pipeline)
    except NotCompilable as exc:
        log.warning("version %s: no fast path, serving the plain pipeline: %s", info.version, exc)
        return None, FastPathReport(False, f"not compilable: {exc}")
    try:
        holdout = holdout_of(project, info)
        limit_openmp_in_this_thread()
        error = verify(compiled, pipeline, holdout, contract, task)
    except Exception as exc:  # an unverifiable fast path is never used
        log.warning("version %s: fast path not verified, serving the plain pipeline: %s", info.version, exc)
        return None, FastPathReport(False, f"could not be verified on the holdout: {exc}")
    if not error <= MAX_RELATIVE_ERROR:
        log.warning(
            "version %s: fast path differs from the pipeline on the holdout (max relative error %.3g > %g); "
            "serving the plain pipeline",
            info.version,
            error,
            MAX_RELATIVE_ERROR,
        )
        return None, FastPathReport(False, f"max relative error {error:.3g} on the holdout", error, len(holdout))
    log.info(
        "version %s: fast path verified on %d holdout rows (max relative error %.3g)", info.version, len(holdout), error
    )
    return compiled, FastPathReport(True, "compiled and verified on the holdout", error, len(holdout))


SwapCallback = Callable[["LoadedModel | None", LoadedModel], None]
RefuseCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Refusal:
    """A version that failed to load or verify and is not served."""

    version: str
    reason: str
    at: str


class ModelHolder:
    """Holds the champion and, once started, polls the registry for a new one."""

    def __init__(
        self, project: Project, on_swap: SwapCallback | None = None, on_refuse: RefuseCallback | None = None
    ) -> None:
        self.project = project
        self._on_refuse = on_refuse
        self.refused: Refusal | None = None  # the latest version refused, while it is the alias's target
        self.shadow = project.config.serve.shadow_fraction > 0
        self.challenger: LoadedModel | None = None  # loaded only for shadow scoring
        self._challenger_failed: str | None = None
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

    def refresh(self, force: bool = False) -> bool:
        """Look up the champion and load it if it changed; True if a new model was swapped in.

        ``force`` retries a version that failed recently (``POST /admin/reload``) instead of waiting.
        """
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
                self.refused = None
                return False
            if (
                not force
                and self._failed
                and self._failed[0] == info.version
                and time.monotonic() - self._failed[1] < RETRY_FAILED_SECONDS
            ):
                return False
            return self._load(info, current)

    def refresh_challenger(self) -> None:
        """Load the challenger for shadow scoring when its alias moves; any failure just disables shadowing."""
        if not self.shadow:
            return
        try:
            info = alias_version(self.project, CHALLENGER)
        except Exception:  # the registry is briefly unreachable: keep what is loaded
            return
        if info is None or (self._current is not None and info.version == self._current.version):
            self.challenger = None  # nothing to compare with
            return
        if (self.challenger and self.challenger.version == info.version) or self._challenger_failed == info.version:
            return
        try:
            self.challenger = load_version(self.project, info, alias=CHALLENGER)
            log.info("shadow scoring with challenger version %s", info.version)
        except Exception as exc:
            self._challenger_failed = info.version
            self.challenger = None
            log.error("cannot load challenger version %s for shadow scoring: %s", info.version, exc)

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
            log.error("refused champion version %s%s: %s", info.version, kept, exc)
            self.refused = Refusal(info.version, str(exc), utc_now())
            if self._on_refuse is not None:
                self._on_refuse(info.version, str(exc))
            if current is None:
                self._reason = f"cannot load champion version {info.version}: {exc}"
            return False
        self._failed = None
        self.refused = None
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
                self.refresh_challenger()
            except Exception:  # never let the reloader die: the next poll tries again
                log.exception("model reload check failed")


__all__ = ["LoadedModel", "ModelHolder", "Refusal", "Scored", "load_checked", "load_version"]
