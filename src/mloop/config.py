"""The typed model of ``mloop.yaml``, overridable by ``MLOOP_…`` environment variables.

Built only in entry points (the CLI callback, ``create_app``), never at import time. Unknown keys
are errors so a misspelt setting never silently falls back to its default.
"""

from __future__ import annotations

import difflib
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mloop.errors import ConfigError

Task = Literal["regression", "classification"]
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    source: str = Field(description="Path (relative to mloop.yaml) or URI of the training data.")
    target: str = Field(description="Column to predict.")
    time_column: str | None = Field(default=None, description="Orders rows in time; used for the split.")
    id_column: str | None = None
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    contract: str = Field(default="contract.yaml", description="Data contract file, relative to mloop.yaml.")
    query: str | None = Field(
        default=None, description="SQL query (or a table name) for a sqlite:/// or postgresql:// source."
    )
    incremental_column: str | None = Field(
        default=None,
        description="Time or id column: ingest then reads only rows past the latest snapshot's maximum and "
        "appends them as a new snapshot version.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible server for s3:// sources (Ceph, MinIO); credentials only "
        "from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).",
    )
    versioning: Literal["auto", "dvc", "off"] = Field(
        default="auto",
        description="Track accepted snapshots with DVC: auto does so when the project is a DVC repository.",
    )
    dvc_remote: str | None = Field(
        default=None, description="DVC remote URL (a folder, s3://…); default: .mloop/dvc-remote in the project."
    )


class SplitConfig(_Section):
    strategy: Literal["temporal", "random"] = Field(
        default="temporal", description="temporal: the latest rows are held out; random: stratified by class."
    )
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = 42
    cv_folds: int = Field(
        default=0, ge=0, le=20, description="k-fold cross-validation on the training part (0: off); logged as cv_*."
    )


class TrainConfig(_Section):
    class Search(_Section):
        """Optuna search over the estimator's hyper-parameters, on k folds of the training part."""

        trials: int = Field(default=0, ge=0, description="Trials in the study (0: no search).")
        timeout_seconds: float | None = Field(default=None, gt=0, description="Stop searching after this long.")
        folds: int = Field(default=3, ge=2, le=10, description="Folds each trial is scored on; pruned between folds.")
        pruning: bool = Field(default=True, description="Stop unpromising trials early (median pruner).")
        storage: str | None = Field(
            default=None,
            description="Optuna storage URL shared by `mloop train --worker` processes (postgresql://…); "
            "default: in memory.",
        )
        study: str | None = Field(default=None, description="Study name; default: <project>-<snapshot hash>.")
        space: dict[str, TrainConfig.Param] = Field(
            default_factory=dict,
            description="The hyper-parameters searched, each with its range (replaces the built-in space); "
            "empty: the built-in space of train.estimator.",
        )

    class Param(_Section):
        """One searched hyper-parameter: int or float from low to high (optionally log-scaled), or choices."""

        type: Literal["int", "float", "categorical"] = Field(description="int, float or categorical.")
        low: float | None = Field(default=None, description="Smallest value (int and float).")
        high: float | None = Field(default=None, validate_default=True, description="Largest value (int and float).")
        log: bool = Field(default=False, description="Sample on a log scale (int and float; low must be > 0).")
        step: float | None = Field(default=None, description="Spacing of the values (int and float; not with log).")
        choices: list[str | bool | int | float | None] | None = Field(
            default=None, validate_default=True, description="The values to choose from (categorical)."
        )

        @field_validator("low", "high", "step")
        @classmethod
        def _whole_for_int(cls, value: float | None, info: Any) -> float | None:
            if value is not None and info.data.get("type") == "int" and not float(value).is_integer():
                raise ValueError("an int parameter's low, high and step must be whole numbers")
            return value

        @field_validator("high")
        @classmethod
        def _range(cls, high: float | None, info: Any) -> float | None:
            kind, low = info.data.get("type"), info.data.get("low")
            missing = ("low" in info.data and low is None) or high is None  # (a low that failed is not in data)
            if kind in ("int", "float") and missing:
                raise ValueError(f"{'an int' if kind == 'int' else 'a float'} parameter needs both low and high")
            if low is not None and high is not None and low > high:
                raise ValueError(f"high ({high:g}) is below low ({low:g})")
            return high

        @field_validator("log")
        @classmethod
        def _log_above_zero(cls, log: bool, info: Any) -> bool:
            low = info.data.get("low")
            if log and low is not None and low <= 0:
                raise ValueError(f"a log-scaled range must start above 0 (low is {low:g})")
            return log

        @field_validator("step")
        @classmethod
        def _step(cls, step: float | None, info: Any) -> float | None:
            if step is not None and step <= 0:
                raise ValueError("step must be positive")
            if step is not None and info.data.get("log"):
                raise ValueError("step cannot be combined with log")
            return step

        @field_validator("choices")
        @classmethod
        def _choices(cls, choices: list[Any] | None, info: Any) -> list[Any] | None:
            kind = info.data.get("type")
            if kind == "categorical":
                if not choices:
                    raise ValueError("a categorical parameter needs a non-empty list of choices")
                ranged = [k for k in ("low", "high", "step") if info.data.get(k) is not None]
                if ranged or info.data.get("log"):
                    raise ValueError(f"a categorical parameter takes choices, not {', '.join(ranged) or 'log'}")
            elif choices is not None:
                raise ValueError("choices are for categorical parameters; int and float ones take low and high")
            return choices

    estimator: Literal["hist_gradient_boosting", "random_forest", "linear", "lightgbm", "xgboost"] = Field(
        default="hist_gradient_boosting", description="lightgbm and xgboost need the extras of the same name."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 42
    threads: int = Field(
        default=1,
        ge=0,
        description="OpenMP/BLAS threads for fitting and scoring (0: all cores). One by default: measured on "
        "2 shared cores, HistGradientBoosting fitted Ames in 1.3 s with one thread and 10.8 s with two.",
    )
    high_cardinality: int = Field(
        default=50, ge=2, description="Text columns with more categories than this are target-encoded."
    )
    search: Search = Field(default_factory=Search)
    importance: bool = Field(default=True, description="Log permutation feature importance on the holdout.")
    plots: bool = Field(default=True, description="Log residual, confusion and calibration plots (matplotlib).")


class GateConfig(_Section):
    class Behaviour(_Section):
        """A change to one feature and the direction the mean prediction may not move in."""

        feature: str = Field(description="Numeric feature to change on every holdout row.")
        factor: float | None = Field(default=None, description="Multiply the feature by this (1.2 = +20%).")
        delta: float | None = Field(default=None, description="Or add this to the feature.")
        expect: Literal["not_lower", "not_higher"] = Field(
            default="not_lower", description="The mean prediction must not go down (not_lower) or up (not_higher)."
        )
        tolerance: float = Field(default=0.0, ge=0.0, description="Relative move allowed the wrong way.")
        target_class: str | None = Field(
            default=None, description="Classification: the class whose probability is watched (default: the last)."
        )
        name: str | None = None

        @property
        def label(self) -> str:
            return self.name or f"{self.feature}_{self.expect}"

    class Shadow(_Section):
        """Evidence from live traffic: the challenger's shadow predictions beside the champion's answers."""

        min_requests: int = Field(
            default=0,
            ge=0,
            description="Shadow-scored requests the challenger needs against the champion to be promoted "
            "(0: not required).",
        )
        max_quality_loss: float | None = Field(
            default=None,
            ge=0.0,
            description="How much (relative) worse than the champion the challenger may score the gate metric "
            "on the same labelled live requests (0.05 = 5%; unset: not checked).",
        )
        tolerance: float = Field(
            default=0.05,
            ge=0.0,
            description="Regression: a shadow prediction within this relative difference of the champion's agrees.",
        )

    metric: str | None = Field(default=None, description="Metric the challenger must win on.")
    min_improvement: float = Field(
        default=0.0, ge=0.0, description="Relative margin the challenger must win by (0.01 = 1%)."
    )
    floors: dict[str, float] = Field(
        default_factory=dict, description="Metrics the challenger must reach at least (r2: 0.7)."
    )
    ceilings: dict[str, float] = Field(
        default_factory=dict, description="Metrics the challenger must stay at or below (rmse: 40000)."
    )
    slices: list[str] = Field(default_factory=list, description="Columns whose values are scored separately.")
    max_slice_regression: float = Field(
        default=0.1, ge=0.0, description="No slice may be this much (relative) worse than under the champion."
    )
    min_slice_rows: int = Field(default=10, ge=1, description="Slices with fewer holdout rows are not judged.")
    max_latency_ms: float | None = Field(default=None, gt=0, description="Single-row predict latency budget.")
    behaviour: list[Behaviour] = Field(default_factory=list, description="Behavioural checks on the holdout.")
    schema_compatible: bool = Field(
        default=True, description="Refuse a challenger needing inputs the champion's callers do not send."
    )
    shadow: Shadow = Field(default_factory=Shadow, description="Shadow evidence the challenger must have.")

    @field_validator("floors", "ceilings")
    @classmethod
    def _known_bound_metrics(cls, bounds: dict[str, float]) -> dict[str, float]:
        known = REGRESSION_METRICS + CLASSIFICATION_METRICS
        for name in bounds:
            if name not in known:
                raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(known)}")
        return bounds

    @field_validator("behaviour")
    @classmethod
    def _one_change(cls, checks: list[GateConfig.Behaviour]) -> list[GateConfig.Behaviour]:
        for check in checks:
            if (check.factor is None) == (check.delta is None):
                raise ValueError(f"behaviour check on {check.feature!r} needs exactly one of factor or delta")
        return checks


class TrackingConfig(_Section):
    uri: str | None = Field(default=None, description="MLflow tracking URI; default: SQLite in .mloop/.")
    experiment: str | None = None


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    reload_interval_seconds: float = Field(default=2.0, gt=0)
    max_batch_size: int = Field(default=10_000, ge=1)
    fast_path: bool = Field(
        default=True, description="Compile the pipeline into NumPy lookups, used only if verified on the holdout."
    )
    access_log: bool = Field(
        default=False, description="uvicorn's line per request; off: /metrics and the prediction log cover requests."
    )
    api_keys_env: str = Field(
        default="MLOOP_API_KEYS", description="Environment variable holding comma-separated API keys."
    )
    api_keys_file: str | None = Field(
        default=None, description="File of API keys, one a line (relative to mloop.yaml); never keys in the YAML."
    )
    shadow_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests the challenger also scores, off the response path."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger ones get HTTP 413."
    )
    micro_batch_max_rows: int = Field(
        default=32,
        ge=1,
        description="Micro-batching: concurrent /v1/predict requests are scored together, at most this many "
        "records per call of the model (1 turns it off).",
    )
    micro_batch_max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Micro-batching: the longest a request waits for others to join its batch. 0: only requests "
        "that arrived together are batched, so an idle server adds no delay.",
    )
    require_artifact_hash: bool = Field(
        default=False,
        description="Refuse a model version without the artifact hash recorded at registration "
        "(mloop.artifact_sha256); a recorded hash is always checked before loading.",
    )
    tls_certfile: str | None = Field(
        default=None, description="PEM certificate (chain): serve HTTPS with it (relative to mloop.yaml)."
    )
    tls_keyfile: str | None = Field(default=None, description="PEM private key of tls_certfile.")
    tls_ca_certs: str | None = Field(
        default=None, description="CA bundle: clients must then present a certificate it signed (mutual TLS)."
    )
    rate_limit: str | None = Field(
        default=None,
        description="Most POSTs per API key or token subject (per client address without keys), in the "
        "`limits` syntax: '100/second', '5000/minute'. Over it: 429 with Retry-After.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where request counts live: memory:// (each worker process its own), or redis://HOST:PORT "
        "for one limit across workers and replicas.",
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        description="JWKS URL of an OIDC provider: bearer tokens it signed are accepted beside API keys, their "
        "'scope' (or 'scp') claim giving predict, feedback, admin.",
    )
    jwt_issuer: str | None = Field(default=None, description="The 'iss' a token must carry (with jwt_jwks_url).")
    jwt_audience: str | None = Field(default=None, description="The 'aud' a token must carry (with jwt_jwks_url).")
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="Signature algorithms accepted (never 'none')."
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse  # only when a limit is configured

            try:
                parse(value)
            except ValueError:
                raise ValueError(f"expected a rate such as '100/second' or '5000/minute', not {value!r}") from None
        return value

    @model_validator(mode="after")
    def _pairs(self) -> ServeConfig:
        if self.tls_keyfile and not self.tls_certfile:
            raise ValueError("tls_keyfile needs tls_certfile")
        if self.tls_certfile and not self.tls_keyfile:
            raise ValueError("tls_certfile needs tls_keyfile")
        # Without both, a token any tenant of the provider can get for any application would be accepted.
        if self.jwt_jwks_url and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError("jwt_jwks_url needs jwt_issuer and jwt_audience")
        return self

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_unsigned_tokens(cls, value: list[str]) -> list[str]:
        if not value or any(a.lower() == "none" or a.upper().startswith("HS") for a in value):
            raise ValueError("expected asymmetric algorithms such as RS256 or ES256 (not none, not HS*)")
        return value


class DataQualityConfig(_Section):
    """When a feature of a monitoring window has a data-quality issue (monitor.data_quality; shares of the rows)."""

    max_null_rate_increase: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="A null rate more than this above the training reference's (and any null in a column the "
        "contract says is never null).",
    )
    max_unseen_share: float = Field(
        default=0.05, ge=0, le=1, description="Rows with a category the training data never had."
    )
    max_out_of_contract_share: float = Field(
        default=0.05, ge=0, le=1, description="Rows outside the contract's range or category set."
    )
    max_coerced_share: float = Field(
        default=0.05, ge=0, le=1, description="Values sent as another type and converted (the text '12' for 12)."
    )
    max_coercion_failure_share: float = Field(
        default=0.0, ge=0, le=1, description="Values that could not be read as the contract's type (any, by default)."
    )
    max_examples: int = Field(default=10, ge=0, description="Distinct unseen categories listed per feature.")


class MultivariateConfig(_Section):
    """Drift of the features taken together (mloop.data.multivariate): fitted with every training run."""

    enabled: bool = Field(
        default=True,
        description="Fit a multivariate reference (PCA reconstruction error, domain classifier) with every training "
        "run and judge each monitored window against it.",
    )
    domain_classifier: bool = Field(
        default=True,
        description="Also run the domain classifier (AUROC of reference vs window): a fit per window, and about 40 "
        "once per window size to calibrate its threshold (cached under .mloop/monitor/multivariate/).",
    )
    false_alarm_rate: float = Field(
        default=0.01, gt=0, lt=1, description="The share of unchanged windows each statistic may alarm on."
    )


class MonitorConfig(_Section):
    window_size: int = Field(default=200, ge=10)
    data_quality: DataQualityConfig = Field(
        default_factory=DataQualityConfig, description="Thresholds of the live traffic's data-quality checks."
    )
    decision: Literal["calibrated", "per_feature"] = Field(
        default="calibrated",
        description="calibrated: the features' p-values are corrected together (Benjamini-Hochberg at "
        "false_alarm_rate) and a drifted feature must also reach effect_floor; per_feature: each feature alone "
        "against psi_threshold, ks_pvalue and chi2_pvalue.",
    )
    false_alarm_rate: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Calibrated decision: the share of unchanged windows allowed to raise any drift alarm.",
    )
    effect_floor: float = Field(
        default=0.1,
        ge=0,
        description="Calibrated decision: the PSI a feature must reach to drift, however significant its test "
        "(keeps large windows from flagging negligible shifts).",
    )
    ks_effect_floor: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Calibrated decision: or the KS statistic (largest CDF gap) a numeric feature must reach.",
    )
    psi_threshold: float = Field(default=0.2, gt=0, description="per_feature decision: PSI above this drifts.")
    ks_pvalue: float = Field(default=0.01, gt=0, lt=1, description="per_feature decision: KS p-value below this.")
    chi2_pvalue: float = Field(default=0.01, gt=0, lt=1, description="per_feature decision: chi² p-value below this.")
    min_drifted_features: int = Field(default=1, ge=1)
    multivariate: MultivariateConfig = Field(
        default_factory=MultivariateConfig, description="Drift of the features taken together, beside per feature."
    )
    estimator_folds: int = Field(
        default=0,
        ge=0,
        le=20,
        description="The quality estimator (quality before labels) learns from the holdout's errors; with k >= 2 "
        "also from the training rows' k-fold out-of-fold errors (k more fits per training run). A small or "
        "unusual holdout is what biases the estimate; the out-of-fold errors see every training row.",
    )
    predictions_url: str | None = Field(
        default=None,
        repr=False,  # may carry a password: kept out of reprs and tracebacks
        description="PostgreSQL URL of the prediction log (postgresql://user@host/db), for servers on several "
        "nodes; default: .mloop/predictions.db (SQLite). A password only via MLOOP_MONITOR__PREDICTIONS_URL. "
        "Checked when the log is opened, not here: a validation message would echo the value.",
    )


class RetrainConfig(_Section):
    on_drift: bool = True
    drift_windows: int = Field(
        default=1,
        ge=1,
        description="Retrain on drift only after this many consecutive drifted windows (a window drifts when "
        "monitor.min_drifted_features features do).",
    )
    on_prediction_drift: bool = Field(default=False, description="Retrain when the predictions drift.")
    on_multivariate_drift: bool = Field(
        default=False,
        description="Count a window whose features drift together (monitor.multivariate) as drifted, toward "
        "drift_windows, even where no single feature drifts.",
    )
    max_quality_decay: float = Field(
        default=0.1, ge=0, description="Retrain when the live metric is this much (relative) worse."
    )
    max_estimated_decay: float | None = Field(
        default=None,
        ge=0,
        description="Retrain when the metric estimated before labels arrive is this much (relative) worse than at "
        "training time; unset: the estimate is shown but triggers nothing.",
    )
    schedule: str | None = Field(
        default=None, description="Cron expression (UTC, e.g. '0 3 * * 0'): retrain when a time it names has passed."
    )
    min_new_labels: int = Field(
        default=50, ge=0, description="Labelled production rows needed since the last retrain before any retrain."
    )
    training_windows: int | None = Field(
        default=None,
        ge=1,
        description="Train on the reference data plus the labelled rows of the last W monitoring windows "
        "(monitor.window_size rows each); default: every labelled production row.",
    )
    max_reference_regression: float = Field(
        default=0.05,
        ge=0,
        description="Reject a retrained challenger that is this much (relative) worse than the champion on the "
        "champion's holdout, which predates production labels: a guard against corrupted feedback.",
    )

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                from croniter import croniter  # imported here: only projects with a schedule need it
            except ImportError:
                raise ValueError(
                    "a schedule needs croniter, a dependency of mloop that is missing from this environment; "
                    "reinstall mloop: pip install mloop"
                ) from None
            if not croniter.is_valid(value):
                raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 3 * * 0')")
        return value


# Set while a config is built from values meant for a file (``mloop init``): MLOOP_* overrides, which may
# hold secrets such as a database URL with its password, must not end up in the written mloop.yaml.
_FILE_VALUES_ONLY: ContextVar[bool] = ContextVar("mloop_config_file_values_only", default=False)


class SparkConfig(_Section):
    """Where ``--engine spark`` runs: an active session first, then ``remote``, then ``master``."""

    master: str = Field(
        default="local[*]",
        description="Spark master URL (local[2], spark://host:7077, k8s://https://host:443, yarn); used when no "
        "session is active and no remote is set.",
    )
    remote: str | None = Field(
        default=None,
        description="Spark Connect URL (sc://host:15002); env SPARK_REMOTE also works. Needs pyspark's connect extra.",
    )
    app_name: str = Field(default="mloop", min_length=1)
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings (spark.executor.memory: 4g …), applied when mloop starts the session.",
    )


class MloopConfig(BaseSettings):
    """One project's settings: ``mloop.yaml`` first, then ``MLOOP_SECTION__KEY`` environment overrides."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="MLOOP_", env_nested_delimiter="__")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Task = "regression"
    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    engine: Literal["local", "spark"] = Field(
        default="local",
        description="Where batch scoring and window drift run: in this process, or on Spark (mloop[spark]); "
        "--engine overrides it per command.",
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _FILE_VALUES_ONLY.get():
            return (init_settings,)
        # The environment overrides the file, so a deployment can change one value without a new YAML.
        return env_settings, init_settings

    @classmethod
    def from_file_values(cls, **values: Any) -> MloopConfig:
        """A config of these values alone, ignoring MLOOP_* overrides: what a written mloop.yaml should hold."""
        token = _FILE_VALUES_ONLY.set(True)
        try:
            return cls(**values)
        finally:
            _FILE_VALUES_ONLY.reset(token)

    @field_validator("gate")
    @classmethod
    def _known_metric(cls, gate: GateConfig) -> GateConfig:
        known = REGRESSION_METRICS + CLASSIFICATION_METRICS
        if gate.metric is not None and gate.metric not in known:
            raise ValueError(f"unknown metric {gate.metric!r}; choose one of {', '.join(known)}")
        return gate

    @property
    def primary_metric(self) -> str:
        """The gate metric, defaulting to RMSE for regression and log loss for classification."""
        if self.gate.metric:
            return self.gate.metric
        return "rmse" if self.task == "regression" else "log_loss"


def _fields_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Names allowed at ``loc`` so a misspelt key can be answered with a suggestion."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(current.model_fields)


def _env_origin(loc: tuple[int | str, ...]) -> str:
    """Where a value came from when the environment, not the file, set it."""
    name = "MLOOP_" + "__".join(str(p) for p in loc).upper()
    return f" (from environment variable {name})" if any(k.upper() == name for k in os.environ) else ""


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(str(loc[-1]), _fields_of(MloopConfig, loc), n=1)
            suggestion = f" (did you mean {'.'.join([*map(str, loc[:-1]), hint[0]])!r}?)" if hint else ""
            lines.append(f"  {key}: unknown key{suggestion}{_env_origin(loc)}")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {item['msg']} (got {item.get('input')!r}){_env_origin(loc)}")
    return f"{source} is not a valid mloop config:\n" + "\n".join(lines)


def parse_config(data: Any, source: str) -> MloopConfig:
    if data is None:
        raise ConfigError(f"{source} is empty; it needs at least name and data.source/data.target.")
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of settings, not {type(data).__name__}.")
    try:
        return MloopConfig(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: Path) -> MloopConfig:
    """Read and check one ``mloop.yaml``; every problem is reported with the file and key."""
    if not path.is_file():
        raise ConfigError(
            f"No config file at {path}. Run `mloop init DIR --source FILE --target COLUMN` to create one, "
            "or pass -c FILE."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, str(path))


def dump_config(config: MloopConfig) -> str:
    """YAML text of a config, leaving out values equal to their defaults except the essentials."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    data = {"name": config.name, "task": config.task, **data}
    return yaml.safe_dump(data, sort_keys=False)
