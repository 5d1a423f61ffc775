"""The fast path: a fitted pipeline compiled at load time into NumPy lookups feeding its estimator.

The pipeline of a tree model (``mloop.train.pipeline``) is a ColumnTransformer of numeric passthrough
and, for text, two imputers (NaN and None → ``__missing__``) and an OrdinalEncoder, then the estimator.
Per request that costs a DataFrame and the transformers' validation (most of the ~14 ms of a single
row). Compiled, a record becomes one float64 row: numbers as they are, categories through a dict that
was filled by running the fitted encoder itself over every category it knows, plus a missing and an
unknown probe, so infrequent pooling, unknown and missing handling are exactly the encoder's.

A compiled pipeline is used only if it reproduces the pipeline's predictions on the version's holdout
(``verify``); anything else (another structure, a mismatch) falls back to the plain pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.data.contract import Contract, coerce_frame
from mloop.train.trees import FittedTrees, class_indices, is_hist_gradient_boosting

MAX_RELATIVE_ERROR = 1e-6
_UNKNOWN = "\x00mloop-unknown-category\x00"  # a value no training category can equal


class NotCompilable(Exception):
    """The pipeline's structure is not one the fast path knows; the reason is the message."""


@dataclass(frozen=True)
class FastPathReport:
    """What ``/v1/model`` says about the fast path of the loaded version."""

    enabled: bool
    reason: str
    max_relative_error: float | None = None
    verified_rows: int = 0


class _FlatTrees:
    """Every tree of the ensemble in flat arrays, walked for all trees at once with NumPy.

    The same decisions as scikit-learn's ``_predict_one_from_raw_data``: NaN follows the node's
    missing direction; a categorical value goes left if it is in the node's left bitset, right if it
    is a known category, and otherwise (unknown, negative) like a missing value; a number goes left if
    ``<=`` the threshold. Leaves point to themselves, so finished trees stay put. Tree values are
    summed in tree order, as ``_raw_predict`` adds them, so the floating-point result is the same.
    """

    def __init__(self, trees: FittedTrees) -> None:
        nodes = [predictor.nodes for iteration in trees.predictors for predictor in iteration]
        bitsets = [predictor.raw_left_cat_bitsets for iteration in trees.predictors for predictor in iteration]
        sizes = np.array([len(n) for n in nodes])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        bitset_offsets = np.concatenate([[0], np.cumsum([len(b) for b in bitsets])[:-1]])
        flat = np.concatenate(nodes)
        tree_of = np.repeat(np.arange(len(nodes)), sizes)
        leaf = flat["is_leaf"].astype(bool)
        own = np.arange(len(flat))
        self.roots = offsets.astype(np.intp)
        self.feature = np.where(leaf, 0, flat["feature_idx"]).astype(np.intp)
        self.threshold = flat["num_threshold"].astype(np.float64)
        self.missing_left = flat["missing_go_to_left"].astype(bool)
        self.left = np.where(leaf, own, flat["left"].astype(np.intp) + offsets[tree_of]).astype(np.intp)
        self.right = np.where(leaf, own, flat["right"].astype(np.intp) + offsets[tree_of]).astype(np.intp)
        self.is_leaf = leaf
        self.value = flat["value"].astype(np.float64)
        self.categorical = flat["is_categorical"].astype(bool) & ~leaf
        self.bitset = (flat["bitset_idx"].astype(np.intp) + bitset_offsets[tree_of]).astype(np.intp)
        empty = np.zeros((0, 8), dtype=np.uint32)
        left_bitsets = np.concatenate([*bitsets, empty]).astype(np.uint32)
        known_bitsets = np.asarray(trees.known_cat_bitsets, dtype=np.uint32)
        f_idx_map = np.asarray(trees.f_idx_map, dtype=np.intp)
        self.any_categorical = bool(self.categorical.any())
        # Per categorical node, the direction of each of the 256 possible codes, decided once here.
        cat_nodes = np.flatnonzero(self.categorical)
        self.category_row = np.zeros(len(flat), dtype=np.intp)
        self.category_row[cat_nodes] = np.arange(1, len(cat_nodes) + 1)
        codes = np.arange(256)
        word, bit = codes >> 5, (codes & 31).astype(np.uint32)
        in_left = ((left_bitsets[self.bitset[cat_nodes]][:, word] >> bit) & 1).astype(bool)
        known = ((known_bitsets[f_idx_map[self.feature[cat_nodes]]][:, word] >> bit) & 1).astype(bool)
        missing_left = self.missing_left[cat_nodes][:, None]
        table = np.zeros((len(cat_nodes) + 1, 257), dtype=bool)
        table[1:, :256] = np.where(in_left, True, np.where(known, False, missing_left))
        table[1:, 256] = missing_left[:, 0]
        self.category_left = table
        self.depth = int(flat["depth"].max()) if len(flat) else 0
        self.per_iteration = len(trees.predictors[0]) if trees.predictors else 1
        self.baseline = np.asarray(trees.baseline, dtype=np.float64).reshape(1, -1)

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        n = matrix.shape[0]
        rows = np.arange(n)[:, None]
        nodes = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        for _ in range(self.depth):
            if self.is_leaf[nodes].all():
                break
            x = matrix[rows, self.feature[nodes]]
            missing = np.isnan(x)
            go_left = np.where(missing, self.missing_left[nodes], x <= self.threshold[nodes])
            if self.any_categorical:
                # NaN, negative and out-of-range codes read column 256: the node's missing direction.
                code = np.where((x >= 0) & (x < 256), x, 256).astype(np.intp)
                go_left = np.where(self.categorical[nodes], self.category_left[self.category_row[nodes], code], go_left)
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        values = self.value[nodes].reshape(n, -1, self.per_iteration)  # (rows, iterations, K)
        # Sequential sums from the baseline, in tree order: the additions _raw_predict makes.
        stacked = np.concatenate([self.baseline.reshape(1, 1, -1).repeat(n, axis=0), values], axis=1)
        return np.asarray(np.cumsum(stacked, axis=1)[:, -1, :])


MAX_CODE_NODES = 100_000  # larger ensembles are not turned into Python source (seconds to compile)
MAX_CODE_DEPTH = 80  # Python's parser nests at most 100 blocks
SMALL_BATCH_ROWS = 64  # up to this many rows the generated code is faster than the per-tree calls


class _CodeTrees:
    """The ensemble as one generated Python function of a row: nested ``if``s, no NumPy per node.

    For the few rows of a request, walking NumPy arrays costs a dozen array operations per tree level
    and the estimator's own predictors a call per tree; straight-line comparisons on local floats cost
    tens of nanoseconds per node. The decisions are ``_FlatTrees``' (the estimator's): NaN follows the
    node's missing direction (``not x > t`` sends NaN left, ``x <= t`` sends it right); a categorical
    code goes left if the node's table says so, and NaN, negative or out-of-range codes take the
    missing direction; since a categorical column only ever holds the codes ``rows`` writes (known
    categories, missing, unknown), each node's answer for each of them is decided when compiling and
    the node becomes one set lookup. Leaf values are added to the baseline in tree order, as ``_raw_predict`` adds
    them, with the same float64 arithmetic; every literal is ``repr`` of a float, which round-trips.
    The source holds only numbers written here, never text from the model file.
    """

    def __init__(self, flat: _FlatTrees, width: int, domains: Mapping[int, set[float]] | None = None) -> None:
        if len(flat.value) > MAX_CODE_NODES:
            raise ValueError(f"{len(flat.value)} tree nodes is too many to generate code for")
        if flat.depth > MAX_CODE_DEPTH:
            raise ValueError(f"trees of depth {flat.depth} are too deep to generate code for")
        k_outputs = flat.per_iteration
        baseline = flat.baseline.reshape(-1)
        args = ", ".join(f"x{j}" for j in range(width))
        lines = ["def _raw(row):", f"    {args}{',' if width == 1 else ''} = row"]
        lines += [f"    r{k} = {_literal(float(baseline[k]))}" for k in range(k_outputs)]
        self._domains = domains or {}
        for tree, root in enumerate(flat.roots.tolist()):
            self._emit(flat, int(root), tree % k_outputs, 1, lines)
        outputs = ", ".join(f"r{k}" for k in range(k_outputs))
        lines.append(f"    return ({outputs},)")
        namespace: dict[str, Any] = {"INF": math.inf, "NAN": math.nan, "int": int}
        exec(compile("\n".join(lines), "<mloop compiled trees>", "exec"), namespace)  # noqa: S102 - numbers only
        self.function = namespace["_raw"]
        self.outputs = k_outputs

    def _emit(self, flat: _FlatTrees, root: int, k: int, depth: int, lines: list[str]) -> None:
        # An explicit stack instead of recursion: ("node", id, indent) or ("else", indent).
        stack: list[tuple[str, int, int]] = [("node", root, depth)]
        while stack:
            kind, node, indent = stack.pop()
            pad = "    " * indent
            if kind == "else":
                lines.append(f"{pad}else:")
                continue
            if flat.is_leaf[node]:
                lines.append(f"{pad}r{k} += {_literal(float(flat.value[node]))}")
                continue
            x = f"x{int(flat.feature[node])}"
            if flat.categorical[node]:
                condition = self._categorical(flat, node, x)
            elif flat.missing_left[node]:
                condition = f"not {x} > {_literal(float(flat.threshold[node]))}"
            else:
                condition = f"{x} <= {_literal(float(flat.threshold[node]))}"
            lines.append(f"{pad}if {condition}:")
            # Emitted in order: if, left subtree, else, right subtree (a stack pops in reverse).
            stack.append(("node", int(flat.right[node]), indent + 1))
            stack.append(("else", -1, indent))
            stack.append(("node", int(flat.left[node]), indent + 1))

    def _categorical(self, flat: _FlatTrees, node: int, x: str) -> str:
        table = flat.category_left[flat.category_row[node]]
        go_missing = bool(table[256])
        domain = self._domains.get(int(flat.feature[node]))
        if domain is None:  # any value: the table's own rule
            left = sorted(int(c) for c in np.flatnonzero(table[:256]))
            members = "{" + ", ".join(map(str, left)) + "}" if left else "()"
            return f"(int({x}) in {members}) if 0.0 <= {x} < 256.0 else {go_missing}"
        # The column only ever holds these codes (``rows`` writes nothing else): decide each one now.
        left_values = sorted(
            v for v in domain if not math.isnan(v) and (bool(table[int(v)]) if 0 <= v < 256 else go_missing)
        )
        members = "{" + ", ".join(_literal(v) for v in left_values) + "}" if left_values else "()"
        if go_missing and any(math.isnan(v) for v in domain):
            return f"{x} in {members} or {x} != {x}"
        return f"{x} in {members}"

    def raw(self, rows: list[list[float]]) -> np.ndarray:
        function = self.function
        return np.array([function(row) for row in rows], dtype=np.float64).reshape(len(rows), self.outputs)


def _literal(value: float) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "(-INF)"
    return repr(value)


@dataclass(frozen=True)
class CompiledPipeline:
    """Records (dicts keyed by column) → the estimator's input matrix and predictions, without pandas."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    codes: tuple[dict[str, float], ...]  # per categorical column: category → code
    missing_codes: tuple[float, ...]
    unknown_codes: tuple[float, ...]
    estimator: Any
    positions: tuple[int, ...] = ()  # column of each feature (numeric, then categorical) in the matrix
    trees: FittedTrees | None = None  # the estimator's trees, summed without its per-call validation
    flat: _FlatTrees | None = None
    code: _CodeTrees | None = None

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        n_num = len(self.numeric)
        pos = self.positions or tuple(range(n_num + len(self.categorical)))
        out = np.empty((len(records), n_num + len(self.categorical)), dtype=np.float64)
        nan = math.nan
        for r, record in enumerate(records):
            row = out[r]
            for j, name in enumerate(self.numeric):
                value = record.get(name)
                row[pos[j]] = nan if value is None else float(value)
            for k, name in enumerate(self.categorical):
                value = record.get(name)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    row[pos[n_num + k]] = self.missing_codes[k]
                else:
                    row[pos[n_num + k]] = self.codes[k].get(str(value), self.unknown_codes[k])
        return out

    def rows(self, records: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        """The rows of ``matrix`` as Python lists (for the generated code: no NumPy per value)."""
        n_num = len(self.numeric)
        width = n_num + len(self.categorical)
        pos = self.positions or tuple(range(width))
        numeric = tuple(zip(self.numeric, pos[:n_num], strict=True))
        categorical = tuple(
            zip(self.categorical, pos[n_num:], self.codes, self.missing_codes, self.unknown_codes, strict=True)
        )
        nan = math.nan
        out = []
        for record in records:
            row = [nan] * width
            get = record.get
            for name, j in numeric:
                value = get(name)
                if value is not None:
                    row[j] = float(value)
            for name, j, codes, missing, unknown in categorical:
                value = get(name)
                if value is None or (value.__class__ is float and value != value):
                    row[j] = missing
                else:
                    row[j] = codes.get(value if value.__class__ is str else str(value), unknown)
            out.append(row)
        return out

    def scores(self, records: Sequence[Mapping[str, Any]], proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions, and class probabilities if ``proba`` (classification)."""
        if self.code is not None and len(records) <= SMALL_BATCH_ROWS:
            return self._finish(self.code.raw(self.rows(records)), proba)
        return self.scores_large(records, proba)

    def scores_small(self, records: Sequence[Mapping[str, Any]], proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``scores`` through the generated code whatever the size (the path of small batches)."""
        if self.code is None:
            return self.scores_large(records, proba)
        return self._finish(self.code.raw(self.rows(records)), proba)

    def scores_large(self, records: Sequence[Mapping[str, Any]], proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``scores`` through the estimator's predictors (or ``predict``): the path of large batches."""
        return self.scores_matrix(self.matrix(records), proba)

    def scores_matrix(self, matrix: np.ndarray, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``scores_large`` of rows already laid out as ``matrix`` lays them out (the Spark engine builds them)."""
        if self.trees is None:
            probabilities = np.asarray(self.estimator.predict_proba(matrix), dtype=float) if proba else None
            return np.asarray(self.estimator.predict(matrix)), probabilities
        return self._finish(self.trees.raw(matrix), proba)

    def _finish(self, raw: np.ndarray, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        assert self.trees is not None  # noqa: S101 - only called on the direct path
        if self.trees.classes is None:
            return self.trees.values(raw), None
        probabilities = np.asarray(self.trees.probabilities(raw), dtype=float) if proba else None
        return self.trees.classes[class_indices(raw)], probabilities

    def predict(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.scores(records, proba=False)[0]

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        probabilities = self.scores(records, proba=True)[1]
        assert probabilities is not None  # noqa: S101 - scores(proba=True) always returns them
        return probabilities


def _columns(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(c, str) for c in value):
        raise NotCompilable(f"{what} columns are not selected by name")
    return tuple(value)


def compile_pipeline(pipeline: Any) -> CompiledPipeline:
    """Compile ``pipeline`` or raise NotCompilable saying why."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    steps = getattr(pipeline, "steps", None)
    if not isinstance(pipeline, Pipeline) or not steps or len(steps) != 2:
        raise NotCompilable("the model is not a two-step scikit-learn Pipeline (preprocess, estimator)")
    pre, estimator = steps[0][1], steps[1][1]
    if not is_hist_gradient_boosting(estimator):
        raise NotCompilable(f"the estimator {type(estimator).__name__} has no fast path (HistGradientBoosting has)")
    if not isinstance(pre, ColumnTransformer) or getattr(pre, "sparse_output_", False):
        raise NotCompilable("the preprocessing is not a dense ColumnTransformer")
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    cat_pipeline: Any = None
    order: list[str] = []
    for name, transformer, columns in pre.transformers_:
        if transformer == "drop" or (name == "remainder" and len(columns) == 0):
            continue
        if name == "num" and (transformer == "passthrough" or _is_identity(transformer, FunctionTransformer)):
            numeric = _columns(columns, "numeric")
        elif name == "cat" and isinstance(transformer, Pipeline):
            categorical, cat_pipeline = _columns(columns, "categorical"), transformer
        else:
            raise NotCompilable(f"the transformer {name!r} ({type(transformer).__name__}) has no fast path")
        order.append(name)
    if order not in (["num", "cat"], ["num"], ["cat"]):
        raise NotCompilable(f"unexpected transformer order {order}")
    codes, missing, unknown = _category_codes(cat_pipeline, categorical) if categorical else ((), (), ())
    plain = CompiledPipeline(numeric, categorical, codes, missing, unknown, estimator)
    try:
        return _direct(plain)
    except (AttributeError, TypeError, ValueError, IndexError):  # other internals: the estimator's predict
        return plain


def _direct(plain: CompiledPipeline) -> CompiledPipeline:
    """Fold the estimator's own categorical re-encoding into the lookups and call its trees directly."""
    estimator = plain.estimator
    trees = FittedTrees.of(estimator)
    n_num, n_cat = len(plain.numeric), len(plain.categorical)
    width = n_num + n_cat
    inner = trees.preprocessor
    if inner is None:
        positions = tuple(range(width))
        codes, missing, unknown = plain.codes, plain.missing_codes, plain.unknown_codes
    else:
        mask = np.asarray(estimator.is_categorical_, dtype=bool)
        if mask.shape != (width,) or list(inner.output_indices_)[:2] != ["encoder", "numerical"]:
            raise ValueError("unexpected internal layout")
        internal_order = [*np.flatnonzero(mask), *np.flatnonzero(~mask)]  # categorical columns first
        positions = tuple(internal_order.index(j) for j in range(width))
        # Probe: row 0 missing, row 1 unknown, then each category's outer code, through the inner encoder.
        height = 2 + max((len(c) for c in plain.codes), default=0)
        probe = np.zeros((height, width))
        for k in range(n_cat):
            column = [plain.missing_codes[k], plain.unknown_codes[k], *plain.codes[k].values()]
            probe[:, n_num + k] = column + [math.nan] * (height - len(column))
        encoded = np.asarray(inner.transform(probe), dtype=np.float64)
        codes_list, missing_list, unknown_list = [], [], []
        for k in range(n_cat):
            col = encoded[:, positions[n_num + k]]
            missing_list.append(float(col[0]))
            unknown_list.append(float(col[1]))
            codes_list.append({c: float(col[2 + i]) for i, c in enumerate(plain.codes[k])})
        codes, missing, unknown = tuple(codes_list), tuple(missing_list), tuple(unknown_list)
    flat = _FlatTrees(trees)
    try:
        domains = {
            positions[n_num + k]: {*codes[k].values(), missing[k], unknown[k]} for k in range(len(plain.categorical))
        }
        code: _CodeTrees | None = _CodeTrees(flat, width, domains)
    except (ValueError, SyntaxError, RecursionError, MemoryError):  # too large: the per-tree calls serve all sizes
        code = None
    return CompiledPipeline(
        plain.numeric,
        plain.categorical,
        codes,
        missing,
        unknown,
        estimator,
        positions=positions,
        trees=trees,
        flat=flat,
        code=code,
    )


def _is_identity(transformer: Any, function_transformer: type) -> bool:
    # Fitted "passthrough" becomes a FunctionTransformer without a function in recent scikit-learn.
    return isinstance(transformer, function_transformer) and getattr(transformer, "func", None) is None


def _category_codes(
    cat_pipeline: Any, columns: tuple[str, ...]
) -> tuple[tuple[dict[str, float], ...], tuple[float, ...], tuple[float, ...]]:
    """Run the fitted encoder over every known category, a missing and an unknown value."""
    encoder = cat_pipeline.steps[-1][1]
    categories = getattr(encoder, "categories_", None)
    if categories is None or len(categories) != len(columns):
        raise NotCompilable("the categorical encoder has no categories per column")
    known = [[str(c) for c in cats if isinstance(c, str)] for cats in categories]
    height = max((len(k) for k in known), default=0)
    # Rows 0 and 1 probe missing (NaN, None), row 2 an unknown value, then each column's categories.
    table: dict[str, list[Any]] = {
        name: [np.nan, None, _UNKNOWN, *k, *([np.nan] * (height - len(k)))]
        for name, k in zip(columns, known, strict=True)
    }
    encoded = np.asarray(cat_pipeline.transform(pd.DataFrame(table, dtype=object)), dtype=np.float64)
    codes, missing, unknown = [], [], []
    for j, k in enumerate(known):
        if not _same(encoded[0, j], encoded[1, j]):
            raise NotCompilable(f"column {columns[j]!r} encodes NaN and None differently")
        missing.append(float(encoded[0, j]))
        unknown.append(float(encoded[2, j]))
        codes.append({category: float(encoded[3 + i, j]) for i, category in enumerate(k)})
    return tuple(codes), tuple(missing), tuple(unknown)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ----------------------------------------------------------------------------------- verification


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain-Python records of a frame (NaN → None), as a validated request would give them."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [dict(zip(cleaned.columns, row, strict=True)) for row in cleaned.itertuples(index=False, name=None)]


def max_relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    expected, got = np.asarray(expected, dtype=float), np.asarray(got, dtype=float)
    if expected.shape != got.shape:
        return math.inf
    both_nan = np.isnan(expected) & np.isnan(got)
    scale = np.maximum(np.abs(expected), 1e-12)
    errors = np.where(both_nan, 0.0, np.abs(expected - got) / scale)
    return float(np.nanmax(np.where(np.isnan(errors), math.inf, errors))) if errors.size else 0.0


def verify(compiled: CompiledPipeline, pipeline: Any, holdout: pd.DataFrame, contract: Contract, task: str) -> float:
    """The largest relative difference between the compiled and the plain pipeline on ``holdout``."""
    features = [c for c in contract.features if c in holdout.columns]
    records = records_of(holdout[features])
    frame = coerce_frame(pd.DataFrame(records, columns=features), contract)
    classification = task == "classification"
    expected = np.asarray(pipeline.predict_proba(frame) if classification else pipeline.predict(frame))
    labels = np.asarray(pipeline.predict(frame)).astype(str) if classification else np.empty(0)
    worst = 0.0
    # Both paths a request can take: the whole holdout at once, and small batches through the generated code.
    small = [records[i : i + SMALL_BATCH_ROWS] for i in range(0, len(records), SMALL_BATCH_ROWS)]
    for path, batches in ((compiled.scores_large, [records]), (compiled.scores_small, small)):
        parts = [path(batch, classification) for batch in batches if batch]
        predicted = np.concatenate([p for p, _ in parts]) if parts else np.empty(0)
        if classification:
            if not np.array_equal(labels, predicted.astype(str)):
                return math.inf
            got = np.concatenate([q for _, q in parts if q is not None]) if parts else np.empty((0, 0))
        else:
            got = predicted
        worst = max(worst, max_relative_error(expected, got))
    return worst


__all__ = [
    "MAX_RELATIVE_ERROR",
    "CompiledPipeline",
    "FastPathReport",
    "NotCompilable",
    "compile_pipeline",
    "max_relative_error",
    "records_of",
    "verify",
]
