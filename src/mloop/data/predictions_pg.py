"""The prediction log in PostgreSQL, for servers on several nodes that cannot share a SQLite file.

Same table, rows, ordering and errors as the SQLite ``PredictionStore``: the text columns hold the same
JSON and ISO-8601 text (``ts`` with the byte-order "C" collation, so text order is time order whatever
the database's locale), and an identity column ``seq`` plays SQLite's ``rowid``: insertion order among
equal times. A failing database raises ``PredictionLogError`` and a stored request id ``DuplicateRequestId``,
so the server's writer spills and replays exactly as it does for SQLite.

The URL may carry a password (only ever from the environment, ``MLOOP_MONITOR__PREDICTIONS_URL``);
messages name the database by ``safe_url`` and error text is scrubbed of the password.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd

from mloop.data.predictions import (
    COLUMNS,
    INSERT_SQL,
    LABEL_SQL,
    PredictionRow,
    _dumps,
    check_last,
    pairs_sql,
    pairs_to_frame,
    rows_to_frame,
    select_sql,
    utc_now,
    where_sql,
)
from mloop.errors import DuplicateRequestId, PredictionLogError

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgres+psycopg")
# Connection settings unless the URL sets them: a database that is down fails the batch quickly (and the
# writer spills it); a connection whose peer went away without closing it (a cut network) is noticed.
_CONNECT_DEFAULTS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5}
# A write that waits longer (a lock held elsewhere, an overloaded server) fails and the writer spills its
# batch, rather than the queue behind it filling up. Only where no statement_timeout is configured (the
# URL's options, PGOPTIONS, the role or the server), and for writes only: the monitor's reads may be long.
STATEMENT_TIMEOUT_MS = 10_000
WRITE_DEADLINE_S = 20.0  # the same from this side, for a server that cannot enforce its own (see _Watchdog)
_LIMIT_WRITES = "SELECT set_config('statement_timeout', %s, true) WHERE current_setting('statement_timeout') = '0'"
PG_COLUMNS = (*COLUMNS, "seq")
# One lock id for every mloop process: replicas starting together must not race to create the table.
_SCHEMA_LOCK = 0x6D6C6F6F70  # "mloop"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY,
    ts TEXT COLLATE "C" NOT NULL,
    model_version TEXT NOT NULL,
    features TEXT NOT NULL,
    prediction TEXT NOT NULL,
    latency_ms DOUBLE PRECISION,
    label TEXT,
    label_ts TEXT,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS predictions_version_ts ON predictions (model_version, ts)
"""
_COLUMNS_FOUND = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'predictions' ORDER BY ordinal_position"
)


def _pg(sql: str) -> str:
    """The shared SQL text with psycopg's placeholders (the texts hold no literal ? or %)."""
    return sql.replace("?", "%s")


_INSERT = _pg(INSERT_SQL)
_INSERT_NEW = _INSERT + " ON CONFLICT (request_id) DO NOTHING"
_LABEL = _pg(LABEL_SQL)
_SELECT = select_sql("seq")
_GET = _pg(f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE request_id = ?")  # noqa: S608 - fixed names


def is_postgres_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SCHEMES if "://" in url else False


def safe_url(url: str) -> str:
    """``scheme://host:port/db``: no user, password or query (which may hold one), for messages."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a malformed port is shown as missing, the message names the host anyway
        port = None
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{port}" if port else host, parts.path, "", ""))


def _libpq_url(url: str) -> str:
    """libpq reads postgresql:// and postgres://; the SQLAlchemy-style driver suffix is dropped."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0].lower()}://{rest}"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise PredictionLogError(
            "a prediction log on PostgreSQL needs psycopg 3: pip install 'mloop[postgres]'"
        ) from None
    return psycopg


class PgPredictionStore:
    """The prediction log in one PostgreSQL table; safe to use from many threads, processes and nodes.

    Every call opens its own connection, as the SQLite store does: nothing stale survives a database
    restart, and the writer batches rows so a connection is paid once per batch.
    """

    def __init__(self, url: str) -> None:
        if not is_postgres_url(url):
            raise PredictionLogError(f"{safe_url(url)} is not a PostgreSQL URL (postgresql://user@host/db)")
        self._url = _libpq_url(url)
        self._secret = unquote(urlsplit(url).password or "")
        self._db = _psycopg()
        try:
            given = self._db.conninfo.conninfo_to_dict(self._url)
            self._connect = {key: value for key, value in _CONNECT_DEFAULTS.items() if key not in given}
            with self._transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._check_schema(conn)  # before changing anything, so a foreign table stays untouched
                for statement in _SCHEMA.split(";"):
                    conn.execute(statement)
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot open the prediction log {self.location}: {self._reason(exc)}") from None

    @property
    def location(self) -> str:
        return safe_url(self._url)

    def _reason(self, exc: BaseException) -> str:
        """The driver's message, first line, never the password."""
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        return text.replace(self._secret, "***") if self._secret else text

    def _check_schema(self, conn: psycopg.Connection[Any]) -> None:
        found = [str(row[0]) for row in conn.execute(_COLUMNS_FOUND)]
        if found and tuple(found) != PG_COLUMNS:
            raise PredictionLogError(
                f"the prediction log {self.location} has a table 'predictions' with columns ({', '.join(found)}), "
                f"not the expected ({', '.join(PG_COLUMNS)}). It was written by something else or another "
                "version of mloop; point monitor.predictions_url elsewhere or move it aside (nothing was changed)."
            )

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a fresh connection: committed on success, discarded on any error.

        A write is also watched from this side: a server that stops answering mid-transaction (a stopped
        process, a network that drops packets) enforces no timeout of its own, and TCP does not notice,
        so after ``WRITE_DEADLINE_S`` the connection is cut and the call fails (the writer spills).
        """
        conn: psycopg.Connection[Any] = self._db.connect(self._url, **self._connect)
        watchdog = _Watchdog(conn.pgconn.socket, WRITE_DEADLINE_S) if write else None
        try:
            try:
                if write:
                    conn.execute(_LIMIT_WRITES, (str(STATEMENT_TIMEOUT_MS),))
                yield conn
                conn.commit()
            finally:
                if watchdog is not None:
                    watchdog.stop()  # before the connection closes: it never touches a reused descriptor
        finally:
            conn.close()  # without a commit the server discards the transaction

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
            with self._transaction(write=True) as conn, conn.cursor() as cursor:
                cursor.executemany(_INSERT_NEW if skip_existing else _INSERT, params)
        except self._db.errors.UniqueViolation as exc:
            detail = exc.diag.message_detail or "a request_id is already logged"
            raise DuplicateRequestId(
                f"cannot log predictions in {self.location}: duplicate request_id: {detail}"
            ) from None
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot log predictions in {self.location}: {self._reason(exc)}") from None
        return len(params)

    def attach_labels(self, labels: Sequence[tuple[str, Any]]) -> list[str]:
        """Attach each label to its request; if any request_id is unknown, attach none and return those ids."""
        if not labels:
            return []
        ids = list(dict.fromkeys(request_id for request_id, _ in labels))
        label_ts = utc_now()
        try:
            with self._transaction(write=True) as conn:
                # FOR UPDATE: a concurrent labelling of the same rows waits instead of interleaving.
                found = conn.execute("SELECT request_id FROM predictions WHERE request_id = ANY(%s) FOR UPDATE", (ids,))
                known = {str(row[0]) for row in found}
                unknown = [request_id for request_id in ids if request_id not in known]
                if unknown:
                    return unknown
                with conn.cursor() as cursor:
                    cursor.executemany(_LABEL, [(_dumps(label), label_ts, request_id) for request_id, label in labels])
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot attach labels in {self.location}: {self._reason(exc)}") from None
        return []

    # ---------------------------------------------------------------------------------- reading

    def read(
        self,
        model_version: str | None = None,
        last: int | None = None,
        since: str | datetime | None = None,
        labelled_only: bool = False,
        shadow: bool = False,
    ) -> pd.DataFrame:
        """Logged predictions, oldest first (by ``ts``, then insertion order), as ``PredictionStore.read``."""
        check_last(last)
        where, params = where_sql(model_version, since, labelled_only, shadow)
        select = _SELECT + _pg(where)  # the WHERE holds fixed column names and placeholders only
        if last is not None:
            select = f"SELECT * FROM ({select} ORDER BY ts DESC, seq DESC LIMIT %s) AS newest"  # noqa: S608
            params.append(last)
        try:
            with self._transaction() as conn:
                rows = conn.execute(f"{select} ORDER BY ts, seq", params).fetchall()
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.location}: {self._reason(exc)}") from None
        return rows_to_frame(rows)

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
            with self._transaction() as conn:
                found = conn.execute("SELECT COUNT(*) FROM predictions" + _pg(where), params).fetchone()  # noqa: S608
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.location}: {self._reason(exc)}") from None
        return int(found[0]) if found else 0

    def read_pairs(
        self,
        challenger_version: str,
        champion_version: str | None = None,
        since: str | datetime | None = None,
        last: int | None = None,
    ) -> pd.DataFrame:
        """The challenger's shadow predictions beside the served ones, as ``PredictionStore.read_pairs``."""
        select, params = pairs_sql("seq", challenger_version, champion_version, since, last)
        try:
            with self._transaction() as conn:
                rows = conn.execute(_pg(select), params).fetchall()
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.location}: {self._reason(exc)}") from None
        return pairs_to_frame(rows)

    def get(self, request_id: str) -> PredictionRow | None:
        """The row logged for ``request_id``, as ``PredictionStore.get``: one primary-key lookup."""
        try:
            with self._transaction() as conn:
                found = conn.execute(_GET, (str(request_id),)).fetchone()
        except self._db.Error as exc:
            raise PredictionLogError(f"cannot read the prediction log {self.location}: {self._reason(exc)}") from None
        return None if found is None else PredictionRow.from_stored(found)


__all__ = ["PgPredictionStore", "is_postgres_url", "safe_url"]


class _Watchdog:
    """Cuts a connection's socket if ``stop`` is not called within ``seconds``.

    ``shutdown`` on a duplicate of the descriptor ends the connection for libpq too, which is blocked
    reading it: the call in progress fails at once. The lock makes ``stop`` wait for a cut in progress,
    so the descriptor is never touched after the caller closes the connection.
    """

    def __init__(self, fd: int, seconds: float) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if self._stopped:
                return
            try:
                with socket.socket(fileno=os.dup(self._fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._timer.cancel()
