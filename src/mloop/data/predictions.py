"""The prediction log: every served prediction, and later its label, in one table.

It lives in ``data`` because ``monitor`` (below ``serve``) reads it. ``PredictionLog`` is the interface;
``PredictionStore`` keeps the table in a SQLite file (one machine) and ``PgPredictionStore``
(``predictions_pg``) in PostgreSQL (several replicas on several nodes); ``open_prediction_store`` picks
one from a path or URL. Both raise ``PredictionLogError`` when the database fails and its subclass
``DuplicateRequestId`` when a row is at fault, which is what the server's writer tells apart to spill.

SQLite runs in WAL mode so the server's writer thread, the feedback endpoint and ``mloop monitor`` can
use the file at the same time; ``busy_timeout`` makes a briefly locked database wait instead of failing.
Rows are only ever inserted or given a label: nothing here deletes or rewrites a stored prediction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from mloop.errors import DuplicateRequestId, PredictionLogError

COLUMNS = ("request_id", "ts", "model_version", "features", "prediction", "latency_ms", "label", "label_ts")
META_COLUMNS = ("request_id", "ts", "model_version", "prediction", "latency_ms", "label", "label_ts")
BUSY_TIMEOUT_MS = 10_000
#: A challenger's shadow prediction of request ``X`` is logged as ``X:shadow`` under the challenger's version.
SHADOW_SUFFIX = ":shadow"
_SHADOW_PATTERN = "%" + SHADOW_SUFFIX  # a LIKE pattern, passed as a parameter (psycopg reads % in the SQL text)
_MAX_PARAMS = 500  # ids per IN (...) query, well under SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    model_version TEXT NOT NULL,
    features TEXT NOT NULL,
    prediction TEXT NOT NULL,
    latency_ms REAL,
    label TEXT,
    label_ts TEXT
);
CREATE INDEX IF NOT EXISTS predictions_version_ts ON predictions (model_version, ts);
"""
# SQL shared by both stores, with ? for a parameter (the PostgreSQL store swaps in %s).
INSERT_SQL = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
LABEL_SQL = "UPDATE predictions SET label = ?, label_ts = ? WHERE request_id = ?"


def select_sql(order_column: str) -> str:
    """Every column, led by the one that keeps insertion order (``rows_to_frame`` reads by position)."""
    return f"SELECT {order_column}, {', '.join(COLUMNS)} FROM predictions"  # noqa: S608 - fixed names only


_SELECT = select_sql("rowid")
_GET = f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE request_id = ?"  # noqa: S608 - fixed names only


def utc_now() -> str:
    """ISO-8601 UTC with a fixed width, so text order is time order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _as_utc_text(value: str | datetime) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime().isoformat(timespec="microseconds")


def _dumps(value: Any) -> str:
    # orjson writes NaN as null and understands numpy scalars, so a prediction never breaks the log.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def where_sql(
    model_version: str | None,
    since: str | datetime | None,
    labelled_only: bool,
    shadow: bool = False,
    before: str | datetime | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE part of a read or count (fixed column names and ? placeholders only) and its parameters.

    Shadow rows (``<id>:shadow``) are left out, or with ``shadow`` are the only rows kept: the suffix test
    filters the rows the ``(model_version, ts)`` index finds, so reads stay index scans, and old logs need
    no new column.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if model_version is not None:
        clauses.append("model_version = ?")
        params.append(str(model_version))
    if since is not None:
        clauses.append("ts >= ?")
        params.append(_as_utc_text(since))
    if before is not None:
        clauses.append("ts < ?")
        params.append(_as_utc_text(before))
    if labelled_only:
        clauses.append("label IS NOT NULL")
    clauses.append("request_id LIKE ?" if shadow else "request_id NOT LIKE ?")
    params.append(_SHADOW_PATTERN)
    return " WHERE " + " AND ".join(clauses), params


PAIR_COLUMNS = (
    "request_id",
    "ts",
    "champion_version",
    "challenger_version",
    "champion_prediction",
    "challenger_prediction",
    "label",
)


def pairs_sql(
    order_column: str, challenger: str, champion: str | None, since: str | datetime | None, last: int | None
) -> tuple[str, list[Any]]:
    """Each shadow row of ``challenger`` joined to the served row it shadowed (by primary key), oldest first.

    Columns: an ordering column, then ``PAIR_COLUMNS`` (JSON text for predictions and label). The shadow
    rows are found by the ``(model_version, ts)`` index, their champion rows by the primary key.
    """
    check_last(last)
    cut = len(SHADOW_SUFFIX)
    select = (
        f"SELECT s.{order_column} AS ord, c.request_id AS request_id, s.ts AS ts, "  # noqa: S608
        "c.model_version AS champion_version, s.model_version AS challenger_version, "
        "c.prediction AS champion_prediction, s.prediction AS challenger_prediction, c.label AS label "
        "FROM predictions AS s JOIN predictions AS c "
        f"ON c.request_id = substr(s.request_id, 1, length(s.request_id) - {cut}) "
        "WHERE s.model_version = ? AND s.request_id LIKE ?"
    )
    params: list[Any] = [str(challenger), _SHADOW_PATTERN]
    if champion is not None:
        select += " AND c.model_version = ?"
        params.append(str(champion))
    if since is not None:
        select += " AND s.ts >= ?"
        params.append(_as_utc_text(since))
    if last is not None:
        select = f"SELECT * FROM ({select} ORDER BY s.ts DESC, ord DESC LIMIT ?) AS newest"  # noqa: S608
        params.append(last)
    return f"{select} ORDER BY ts, ord", params


def pairs_to_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows selected by ``pairs_sql`` as ``read_pairs`` returns them: predictions and label decoded."""
    return pd.DataFrame(
        {
            "request_id": [str(r[1]) for r in rows],
            "ts": [r[2] for r in rows],
            "champion_version": [str(r[3]) for r in rows],
            "challenger_version": [str(r[4]) for r in rows],
            "champion_prediction": pd.Series([_loads(r[5]) for r in rows], dtype=object),
            "challenger_prediction": pd.Series([_loads(r[6]) for r in rows], dtype=object),
            "label": pd.Series([_loads(r[7]) for r in rows], dtype=object),
        },
        columns=list(PAIR_COLUMNS),
    )


def check_last(last: int | None) -> None:
    if last is not None and last < 0:
        raise ValueError(f"last must be zero or more, not {last}")


def rows_to_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows selected by ``select_sql``, oldest first, as ``read`` returns them: features as columns.

    ``prediction`` and ``label`` are decoded from JSON; a missing label is None. Meta columns win over a
    feature of the same name, which is renamed ``feature.<name>``.
    """
    meta = pd.DataFrame(
        {
            "request_id": [r[1] for r in rows],
            "ts": [r[2] for r in rows],
            "model_version": [r[3] for r in rows],
            "prediction": [_loads(r[5]) for r in rows],
            "latency_ms": pd.Series([r[6] for r in rows], dtype="float64"),
            "label": pd.Series([_loads(r[7]) for r in rows], dtype=object),
            "label_ts": pd.Series([r[8] for r in rows], dtype=object),
        },
        columns=list(META_COLUMNS),
    )
    features = _missing_as_nan(pd.DataFrame.from_records([orjson.loads(r[4]) for r in rows], index=meta.index))
    features = features.rename(columns={c: f"feature.{c}" for c in features.columns if c in META_COLUMNS})
    return pd.concat([meta, features], axis=1)


def _missing_as_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON null becomes NaN in every column, as it does when the model reads the request."""
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_object_dtype(dtype):
            frame[name] = frame[name].where(frame[name].notna(), np.nan)
    return frame.infer_objects()


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One logged prediction; ``label`` is usually attached later with ``attach_labels``."""

    request_id: str
    ts: str
    model_version: str
    features: dict[str, Any]
    prediction: Any
    latency_ms: float
    label: Any = None
    label_ts: str | None = field(default=None)

    def to_json(self) -> bytes:
        """One line of a spill file."""
        return orjson.dumps(
            [self.request_id, self.ts, self.model_version, self.features, self.prediction, self.latency_ms],
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )

    @classmethod
    def from_json(cls, line: bytes) -> PredictionRow:
        request_id, ts, model_version, features, prediction, latency_ms = orjson.loads(line)
        return cls(str(request_id), str(ts), str(model_version), dict(features), prediction, float(latency_ms))

    @classmethod
    def from_stored(cls, values: Sequence[Any]) -> PredictionRow:
        """A row as the table holds it (the columns of ``COLUMNS``, in order), JSON columns decoded."""
        request_id, ts, model_version, features, prediction, latency_ms, label, label_ts = values
        return cls(
            str(request_id),
            str(ts),
            str(model_version),
            dict(orjson.loads(features)),
            _loads(prediction),
            float("nan") if latency_ms is None else float(latency_ms),
            _loads(label),
            None if label_ts is None else str(label_ts),
        )

    def as_params(self) -> tuple[Any, ...]:
        labelled = self.label is not None
        return (
            self.request_id,
            self.ts,
            self.model_version,
            _dumps(self.features),
            _dumps(self.prediction),
            float(self.latency_ms),
            _dumps(self.label) if labelled else None,
            (self.label_ts or utc_now()) if labelled else None,
        )


class PredictionLog(Protocol):
    """What the server, ``monitor`` and ``retrain`` use of a prediction log, whatever database holds it."""

    @property
    def location(self) -> str:
        """Where the log is, safe for a message or a log line (no password)."""
        ...

    def write_many(self, rows: Iterable[PredictionRow], skip_existing: bool = False) -> int: ...

    def attach_labels(self, labels: Sequence[tuple[str, Any]]) -> list[str]: ...

    def read(
        self,
        model_version: str | None = None,
        last: int | None = None,
        since: str | datetime | None = None,
        labelled_only: bool = False,
        shadow: bool = False,
    ) -> pd.DataFrame: ...

    def count(
        self,
        model_version: str | None = None,
        since: str | None = None,
        labelled_only: bool = False,
        shadow: bool = False,
        before: str | None = None,
    ) -> int: ...

    def read_pairs(
        self,
        challenger_version: str,
        champion_version: str | None = None,
        since: str | datetime | None = None,
        last: int | None = None,
    ) -> pd.DataFrame: ...

    def get(self, request_id: str) -> PredictionRow | None:
        """The row logged for ``request_id`` (its primary key), or None when there is none."""
        ...


class PredictionStore:
    """The prediction log in one SQLite file; safe to use from several threads and processes.

    Every call opens its own short-lived connection: SQLite connections must not cross threads, and
    the writer batches rows so the cost of opening is paid once per batch.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as conn:
                self._check_schema(conn)  # before changing anything, so a foreign file stays untouched
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise PredictionLogError(f"cannot open the prediction log {self.path}: {exc}") from None

    @property
    def location(self) -> str:
        return str(self.path)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        found = [row[1] for row in conn.execute("PRAGMA table_info(predictions)")]
        if found and tuple(found) != COLUMNS:
            raise PredictionLogError(
                f"the prediction log {self.path} has a table 'predictions' with columns ({', '.join(found)}), "
                f"not the expected ({', '.join(COLUMNS)}). It was written by something else or another "
                "version of mloop; move it aside (nothing was changed) and restart."
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection: committed on success, rolled back on any error."""
        with closing(self._connect()) as conn:
            # IMMEDIATE takes the write lock up front, so a check-then-write cannot interleave.
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    # ---------------------------------------------------------------------------------- writing

    def write_many(self, rows: Iterable[PredictionRow], skip_existing: bool = False) -> int:
        """Insert ``rows`` in one transaction (all or none); returns how many were given.

        ``skip_existing`` ignores rows whose request_id is already stored, so replaying rows that may
        have been written before (a spill file) is idempotent.
        """
        params = [row.as_params() for row in rows]
        if not params:
            return 0
        try:
            with self._transaction(immediate=True) as conn:
                conn.executemany(
                    INSERT_SQL.replace("INSERT", "INSERT OR IGNORE", 1) if skip_existing else INSERT_SQL, params
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateRequestId(f"cannot log predictions in {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot log predictions in {self.path}: {exc}") from None
        return len(params)

    def attach_labels(self, labels: Sequence[tuple[str, Any]]) -> list[str]:
        """Attach each label to its request; if any request_id is unknown, attach none and return those ids."""
        if not labels:
            return []
        ids = list(dict.fromkeys(request_id for request_id, _ in labels))
        label_ts = utc_now()
        try:
            with self._transaction(immediate=True) as conn:
                known = self._known_ids(conn, ids)
                unknown = [request_id for request_id in ids if request_id not in known]
                if unknown:
                    return unknown
                conn.executemany(LABEL_SQL, [(_dumps(label), label_ts, request_id) for request_id, label in labels])
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot attach labels in {self.path}: {exc}") from None
        return []

    @staticmethod
    def _known_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(ids), _MAX_PARAMS):
            chunk = ids[start : start + _MAX_PARAMS]
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT request_id FROM predictions WHERE request_id IN ({marks})"  # noqa: S608 - only ?s
            known.update(row[0] for row in conn.execute(query, chunk))
        return known

    # ---------------------------------------------------------------------------------- reading

    def _fetch(
        self,
        model_version: str | None,
        last: int | None,
        since: str | datetime | None,
        labelled_only: bool,
        shadow: bool = False,
    ) -> list[tuple[Any, ...]]:
        check_last(last)
        where, params = where_sql(model_version, since, labelled_only, shadow)
        select = _SELECT + where  # the WHERE holds fixed column names and ? placeholders only
        if last is not None:
            select = f"SELECT * FROM ({select} ORDER BY ts DESC, rowid DESC LIMIT ?)"  # noqa: S608
            params.append(last)
        try:
            with closing(self._connect()) as conn:
                return conn.execute(f"{select} ORDER BY ts, rowid", params).fetchall()
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.path}: {exc}") from None

    def read(
        self,
        model_version: str | None = None,
        last: int | None = None,
        since: str | datetime | None = None,
        labelled_only: bool = False,
        shadow: bool = False,
    ) -> pd.DataFrame:
        """Logged predictions, oldest first (by ``ts``, then insertion order), features as columns.

        ``last`` keeps the newest N rows; ``since`` keeps rows at or after that time (any ISO-8601 text;
        without a zone it is UTC). ``prediction`` and ``label`` are decoded from JSON; a missing label
        is None. Meta columns win over a feature of the same name, which is renamed ``feature.<name>``.
        Shadow rows (a challenger's ``<id>:shadow`` predictions) are left out; ``shadow`` reads only them.
        """
        return rows_to_frame(self._fetch(model_version, last, since, labelled_only, shadow))

    def count(
        self,
        model_version: str | None = None,
        since: str | None = None,
        labelled_only: bool = False,
        shadow: bool = False,
        before: str | None = None,
    ) -> int:
        """How many rows ``read`` would return with the same filters (and, with ``before``, a ts before it)."""
        where, params = where_sql(model_version, since, labelled_only, shadow, before)
        try:
            with closing(self._connect()) as conn:
                (total,) = conn.execute("SELECT COUNT(*) FROM predictions" + where, params).fetchone()  # noqa: S608
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.path}: {exc}") from None
        return int(total)

    def read_pairs(
        self,
        challenger_version: str,
        champion_version: str | None = None,
        since: str | datetime | None = None,
        last: int | None = None,
    ) -> pd.DataFrame:
        """The challenger's shadow predictions beside the served predictions of the same requests.

        One row per shadow-scored request, oldest first, with ``PAIR_COLUMNS``: the served request's id,
        the shadow row's time, both versions and predictions, and the served request's label (None until
        feedback). ``champion_version`` keeps the requests that version served; ``last`` the newest N.
        """
        select, params = pairs_sql("rowid", challenger_version, champion_version, since, last)
        try:
            with closing(self._connect()) as conn:
                return pairs_to_frame(conn.execute(select, params).fetchall())
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.path}: {exc}") from None

    def get(self, request_id: str) -> PredictionRow | None:
        """The row logged for ``request_id``, its label too if one came, or None: one primary-key lookup."""
        try:
            with closing(self._connect()) as conn:
                found = conn.execute(_GET, (str(request_id),)).fetchone()
        except sqlite3.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.path}: {exc}") from None
        return None if found is None else PredictionRow.from_stored(found)


def open_prediction_store(target: Path | str) -> PredictionLog:
    """The prediction log at ``target``: a ``postgresql://`` URL, or a SQLite file's path."""
    text = str(target)
    if "://" not in text:
        return PredictionStore(target)
    from mloop.data.predictions_pg import PgPredictionStore, is_postgres_url, safe_url

    if not is_postgres_url(text):
        raise PredictionLogError(
            f"the prediction log URL {safe_url(text)} is not supported: use postgresql://user@host/db "
            "(or postgresql+psycopg://…), or leave monitor.predictions_url unset for the SQLite file."
        )
    return PgPredictionStore(text)


__all__ = [
    "COLUMNS",
    "PAIR_COLUMNS",
    "SHADOW_SUFFIX",
    "PredictionLog",
    "PredictionRow",
    "PredictionStore",
    "open_prediction_store",
    "utc_now",
]
