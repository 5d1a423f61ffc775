"""Read a CSV, JSON or Parquet table served over HTTP(S)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
import pandas as pd

from mloop.data.formats import kind_of, parse_table
from mloop.errors import SourceError

TIMEOUT_SECONDS = 60.0


def safe_url(url: str) -> str:
    """The URL without user info or query string (either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def read_http(url: str) -> pd.DataFrame:
    """GET ``url`` and parse it by its suffix or content type; failures name the URL and the status."""
    shown = safe_url(url)
    try:
        response = httpx.get(url, timeout=TIMEOUT_SECONDS, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise SourceError(f"{shown}: cannot download ({type(exc).__name__}: {exc}).") from None
    if response.status_code >= 400:
        raise SourceError(f"{shown}: the server answered HTTP {response.status_code} {response.reason_phrase}.")
    path = urlsplit(url).path
    kind = kind_of(path, response.headers.get("content-type", ""))
    return parse_or_explain(response.content, path, kind, shown)


def parse_or_explain(body: bytes, name: str, kind: str, shown: str) -> pd.DataFrame:
    try:
        return parse_table(body, name, kind)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{shown}: not readable as UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{shown}: not a readable {kind} table ({first}).") from None
