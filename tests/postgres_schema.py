"""A fresh schema on the local PostgreSQL (127.0.0.1:5432, trust auth, db ``test``) for one test, dropped after.

Unreachable on a laptop: the test is skipped with the reason; on CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("MLOOP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> Any:
    """An autocommit connection to the test database, or a skip (never on CI) when there is none."""
    import psycopg

    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {POSTGRES_URL.rsplit('@', 1)[-1]} is unreachable ({exc})")


def url_with_schema(url: str, schema: str) -> str:
    """``url`` with the schema first on the search path: unqualified tables are created and read there."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(URL whose tables live in a new empty schema, the schema's name); the schema is dropped afterwards."""
    schema = f"mloop_test_{uuid.uuid4().hex[:10]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield url_with_schema(POSTGRES_URL, schema), schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
