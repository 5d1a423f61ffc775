"""Read a SQL query (or a whole table) from a database named by a SQLAlchemy URL.

Messages name the database by scheme, host, port and name only: a URL may carry a user and password,
and neither may reach a terminal or a log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.errors import SourceError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql", "oracle")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def is_sql(uri: str) -> bool:
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    return scheme in SQL_SCHEMES


def _url(uri: str) -> URL:
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # pragma: no cover - sqlalchemy comes with mlflow
        raise SourceError(
            "reading a database needs SQLAlchemy, a dependency of mloop that is missing from this environment; "
            "reinstall mloop: pip install mloop."
        ) from None
    try:
        url = make_url(uri)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for a malformed URL
        raise SourceError(
            f"{uri.split('://', 1)[0]}:// URL is malformed; expected e.g. postgresql://host/db."
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver mloop installs
    return url


def safe_name(url: URL) -> str:
    """The database without credentials, for messages."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{url.database or ''}"
    where = f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}"
    return f"{url.get_backend_name()}://{where}/{url.database or ''}"


def safe_name_of(uri: str) -> str:
    return safe_name(_url(uri))


def _scrub(text: str, url: URL) -> str:
    for secret in (url.password, url.username):
        if secret:
            text = text.replace(str(secret), "***")
    return text


def _first_line(exc: BaseException, url: URL) -> str:
    if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ is not None:
        exc = exc.__cause__  # pandas wraps the driver's error
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return _scrub(lines[0] if lines else type(orig).__name__, url)


def sql_text(query: str, after: tuple[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL to run: a bare table name reads the whole table; ``after`` keeps rows past a watermark."""
    # The SQL is the project owner's own (mloop.yaml); names spliced into it must match _IDENTIFIER.
    query = query.strip().rstrip(";")
    base = f"SELECT * FROM {query}" if _IDENTIFIER.match(query) else query  # noqa: S608
    if after is None:
        return base, {}
    column, value = after
    if not _IDENTIFIER.match(column):
        raise SourceError(f"incremental column {column!r} must be a plain column name.")
    return f'SELECT * FROM ({base}) AS mloop_source WHERE "{column}" > :watermark', {"watermark": value}  # noqa: S608


def read_sql(uri: str, query: str | None, after: tuple[str, Any] | None = None) -> pd.DataFrame:
    """Run ``query`` (SQL or a table name) against ``uri``; ``after=(column, value)`` reads only newer rows."""
    url = _url(uri)
    name = safe_name(url)
    if not query:
        raise SourceError(f"{name}: a database source needs a query; set data.query in mloop.yaml (SQL or a table).")
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or url.database == ":memory:" or not path.is_file():
            raise SourceError(f"{name}: no such SQLite database file. Check data.source in mloop.yaml.")
    from sqlalchemy import create_engine, exc, text
    from sqlalchemy.pool import NullPool

    sql, params = sql_text(query, after)
    try:
        engine = create_engine(url, poolclass=NullPool)
    except ImportError as error:
        if url.get_backend_name() == "postgresql":
            hint = "pip install 'mloop[postgres]'"
        else:  # mloop installs only PostgreSQL's driver
            hint = f"install the Python driver SQLAlchemy uses for {url.drivername}"
        raise SourceError(f"{name}: the database driver is not installed ({error.name}); {hint}.") from None
    try:
        try:
            connection = engine.connect()
        except exc.SQLAlchemyError as error:
            reason = _first_line(error, url)
            raise SourceError(f"{name}: cannot connect to the database ({reason}).") from None
        with connection:
            try:
                frame = pd.read_sql_query(text(sql), connection, params=params)
            except (exc.SQLAlchemyError, pd.errors.DatabaseError) as error:
                raise SourceError(f"{name}: the query failed ({_first_line(error, url)}). Query: {sql}") from None
    finally:
        engine.dispose()
    if frame.empty and after is None:
        raise SourceError(f"{name}: the query returned no rows. Query: {sql}")
    return frame
