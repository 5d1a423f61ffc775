"""The JSON answers of ``/v1/predict`` and ``/v1/model``, shaped from a loaded model and its scores."""

from __future__ import annotations

import dataclasses
from typing import Any

from mloop.registry.versions import VersionInfo
from mloop.serve.model_holder import LoadedModel, Refusal
from mloop.serve.schemas import FastPathInfo, FeatureInfo, ModelResponse, RefusalInfo


def predict_answer(
    model: LoadedModel,
    single: bool,
    predictions: list[Any],
    probabilities: list[dict[str, float]] | None,
    ids: list[str],
) -> dict[str, Any]:
    """One object for a single record, parallel lists for a batch; classification adds probabilities."""
    if single:
        answer: dict[str, Any] = {"prediction": predictions[0], "request_id": ids[0], "model_version": model.version}
        if probabilities is not None:
            answer["probabilities"] = probabilities[0]
        return answer
    answer = {"predictions": predictions, "request_ids": ids, "model_version": model.version}
    if probabilities is not None:
        answer["probabilities"] = probabilities
    return answer


def _metrics_of(info: VersionInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in info.tags.items():
        if key.startswith("mloop.metric."):
            try:
                out[key.removeprefix("mloop.metric.")] = float(value)
            except ValueError:
                continue
    return out


def describe(model: LoadedModel, name: str, refused: Refusal | None = None) -> dict[str, Any]:
    """``GET /v1/model``: the version, its holdout metrics, its features and its fast path."""
    contract = model.contract
    features = [
        FeatureInfo(name=c, dtype=s.dtype, nullable=s.nullable, categories=s.categories)
        for c, s in ((c, contract.columns[c]) for c in contract.features)
    ]
    return ModelResponse(
        name=name,
        version=model.version,
        alias=model.alias,
        run_id=model.info.run_id,
        task=model.task,
        metrics=_metrics_of(model.info),
        contract_hash=contract.hash(),
        loaded_at=model.loaded_at,
        classes=model.classes,
        features=features,
        fast_path=FastPathInfo(**dataclasses.asdict(model.fast_path)),
        artifact_sha256=model.artifact_sha256,
        refused=RefusalInfo(**dataclasses.asdict(refused)) if refused else None,
    ).model_dump(mode="json")


__all__ = ["describe", "predict_answer"]
