"""Compiling a fitted pipeline into NumPy lookups, and checking it against the pipeline."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mloop.data.contract import Contract, coerce_frame, infer_contract
from mloop.serve.fastpath import NotCompilable, compile_pipeline, max_relative_error, records_of, verify
from mloop.train.pipeline import build_pipeline


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, Contract]:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "area": rng.uniform(500, 3000, n),
            "rooms": rng.integers(1, 8, n).astype(float),
            "pool": rng.choice([True, False], n),
            "town": rng.choice(["a", "b", "c", None], n),
            "roof": rng.choice(["flat", "gable"], n),
        }
    )
    frame.loc[::17, "area"] = np.nan
    frame["price"] = frame["area"].fillna(1000) * 100 + frame["town"].map({"a": 5e4, "b": 0}).fillna(2e4)
    return frame, infer_contract(frame, "price")


def test_compiled_pipeline_reproduces_the_pipeline(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, contract = data
    pipeline = build_pipeline(contract, "regression").fit(coerce_frame(frame, contract), frame["price"])
    compiled = compile_pipeline(pipeline)

    assert compiled.numeric == ("area", "rooms", "pool") and compiled.categorical == ("town", "roof")
    assert verify(compiled, pipeline, frame, contract, "regression") == 0.0
    odd = frame.head(3).assign(town=["zzz", None, np.nan], area=[None, 1.0, np.nan])
    want = pipeline.predict(coerce_frame(odd, contract))
    assert np.array_equal(compiled.predict(records_of(odd[contract.features])), want)


def test_unknown_and_missing_categories_follow_the_encoder(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, contract = data
    pipeline = build_pipeline(contract, "regression").fit(coerce_frame(frame, contract), frame["price"])
    compiled = compile_pipeline(pipeline)
    town = compiled.categorical.index("town")
    assert math.isnan(compiled.unknown_codes[town])
    assert compiled.missing_codes[town] == compiled.codes[town]["__missing__"]
    assert compiled.trees is not None  # the trees are called directly, not through predict
    row = compiled.matrix([{"area": None, "rooms": 2, "pool": True, "town": "nowhere", "roof": None}])[0]
    area, rooms, pool, town_at = (compiled.positions[i] for i in range(4))
    assert math.isnan(row[area]) and row[rooms] == 2.0 and row[pool] == 1.0 and math.isnan(row[town_at])


def test_a_tampered_compilation_fails_verification(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, contract = data
    pipeline = build_pipeline(contract, "regression").fit(coerce_frame(frame, contract), frame["price"])
    compiled = compile_pipeline(pipeline)
    town = compiled.categorical.index("town")
    swapped = {k: compiled.codes[town]["a"] if k == "b" else v for k, v in compiled.codes[town].items()}
    broken = replace(compiled, codes=tuple(swapped if i == town else c for i, c in enumerate(compiled.codes)))
    assert verify(broken, pipeline, frame, contract, "regression") > 1e-6


def test_classification_compares_labels_and_probabilities(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, _ = data
    labelled = frame.assign(expensive=np.where(frame["price"] > frame["price"].median(), "yes", "no"))
    labelled = labelled.drop(columns="price")
    contract = infer_contract(labelled, "expensive")
    pipeline = build_pipeline(contract, "classification").fit(coerce_frame(labelled, contract), labelled["expensive"])
    assert verify(compile_pipeline(pipeline), pipeline, labelled, contract, "classification") == 0.0


def test_other_pipelines_are_not_compiled(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, contract = data
    linear = build_pipeline(contract, "regression", estimator="linear")
    with pytest.raises(NotCompilable, match="Ridge"):
        compile_pipeline(linear.fit(coerce_frame(frame, contract), frame["price"]))
    with pytest.raises(NotCompilable, match="Pipeline"):
        compile_pipeline(object())


def test_relative_error() -> None:
    assert max_relative_error(np.array([100.0, np.nan]), np.array([100.0001, np.nan])) == pytest.approx(1e-6)
    assert max_relative_error(np.array([1.0]), np.array([np.nan])) == math.inf
    assert max_relative_error(np.array([1.0, 2.0]), np.array([1.0])) == math.inf


def _odd_records(frame: pd.DataFrame, contract: Contract) -> list[dict[str, object]]:
    """Rows with every kind of value a request can carry: missing numbers, unknown and missing categories."""
    odd = frame.head(40).copy()
    odd.loc[odd.index[::3], "town"] = "nowhere"
    odd.loc[odd.index[1::3], "town"] = None
    odd.loc[odd.index[::4], "area"] = np.nan
    odd.loc[odd.index[::5], "roof"] = "thatch"
    return records_of(odd[contract.features])


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_generated_code_and_the_estimators_trees_agree_exactly(data: tuple[pd.DataFrame, Contract], task: str) -> None:
    frame, _ = data
    if task == "regression":
        target, labelled = "price", frame
    else:
        cuts = [frame["price"].median()] if task == "binary" else list(frame["price"].quantile([0.33, 0.66]))
        labelled = frame.assign(band=np.digitize(frame["price"], cuts).astype(str)).drop(columns="price")
        target = "band"
    contract = infer_contract(labelled, target)
    kind = "regression" if task == "regression" else "classification"
    pipeline = build_pipeline(contract, kind).fit(coerce_frame(labelled, contract), labelled[target])
    compiled = compile_pipeline(pipeline)
    assert compiled.code is not None  # small batches take the generated code
    records = _odd_records(labelled, contract)
    small, small_proba = compiled.scores_small(records, proba=kind == "classification")
    large, large_proba = compiled.scores_large(records, proba=kind == "classification")
    frame_in = coerce_frame(pd.DataFrame(records, columns=contract.features), contract)
    assert np.array_equal(small, large) and np.array_equal(small, pipeline.predict(frame_in))
    if kind == "classification":
        assert small_proba is not None and large_proba is not None
        assert np.array_equal(small_proba, large_proba)
        assert max_relative_error(pipeline.predict_proba(frame_in), small_proba) <= 1e-12
    one_by_one = np.concatenate([compiled.predict([r]) for r in records])
    assert np.array_equal(one_by_one, small)  # a batch of one, as a single request is scored


def test_a_wrong_generated_tree_fails_verification(data: tuple[pd.DataFrame, Contract]) -> None:
    frame, contract = data
    pipeline = build_pipeline(contract, "regression").fit(coerce_frame(frame, contract), frame["price"])
    compiled = compile_pipeline(pipeline)
    assert compiled.code is not None
    right = compiled.code.function
    compiled.code.function = lambda row: tuple(v + 1.0 for v in right(row))
    # Only the small-batch path is wrong, and verification checks it too.
    assert verify(compiled, pipeline, frame, contract, "regression") > 1e-6
