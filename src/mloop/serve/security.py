"""API keys with scopes: from an environment variable and/or a file, held hashed, compared in constant time,
never logged, and re-read from the file when it changes so keys rotate without a restart.

A key is written ``scope:KEY``, one a line in the file (``#`` starts a comment) or comma-separated in
the environment variable; the scopes are ``predict`` (POST /v1/predict, /invocations, V2 infer),
``feedback`` (POST /v1/feedback) and ``admin`` (/admin/*). A key may appear with several scopes. A bare
``KEY`` keeps its old meaning, every scope, and is warned about at load. With keys configured every POST
needs one, sent as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``: none or an unknown key is a 401,
a key without the route's scope a 403. GET endpoints (health, readiness, metrics, model description,
docs) stay open for probes and scrapers. ``/admin/*`` always needs a key: without keys configured it is
refused, so a server is never administrable by accident.

A configured key file that cannot be read at start stops the server rather than serving open. Once
running, a file that turns unreadable or malformed keeps the last good keys (and says so in the log); a
file emptied of keys leaves every guarded route refused, never open.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from mloop.errors import HTTPProblem, ServeError
from mloop.serve.http import OrjsonResponse, status_of

if TYPE_CHECKING:
    from mloop.serve.rate_limit import RateLimit
    from mloop.serve.tokens import TokenVerifier

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin/"
PREDICT, FEEDBACK, ADMIN = "predict", "feedback", "admin"
SCOPES = frozenset({PREDICT, FEEDBACK, ADMIN})
KEY_SETTINGS = "serve.api_keys_env / serve.api_keys_file"
RECHECK_SECONDS = 1.0  # how often a request may look at the key file's mtime
# ``word:rest`` where word looks like a scope: an unknown word is a typo, which must not become a bare
# key that may do everything.
_SCOPED = re.compile(r"^([a-z_]+):(.*)$")


@dataclass(frozen=True)
class Principal:
    """Who sent a request, as far as limits and scopes go: ``id`` never holds a key or a token."""

    id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class _Key:
    digest: bytes  # SHA-256 of the key: the key itself is not kept in memory
    scopes: frozenset[str]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_keys(items: Iterable[str], where: str) -> tuple[list[_Key], list[str]]:
    """Keys of ``items`` (``scope:KEY`` or a bare ``KEY``; blanks and ``#`` comments skipped) and where each
    bare one is (``where`` item N), for the warning. A line's content is never in an error or a log."""
    keys: list[_Key] = []
    bare: list[str] = []
    for number, raw in enumerate(items, start=1):
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        scoped = _SCOPED.match(item)
        if scoped is None:
            keys.append(_Key(_digest(item), SCOPES))
            bare.append(f"{where} {number}")
            continue
        scope, key = scoped.group(1), scoped.group(2).strip()
        if scope not in SCOPES:
            raise ServeError(f"{where} {number}: unknown API key scope {scope!r}; use {', '.join(sorted(SCOPES))}")
        if not key:
            raise ServeError(f"{where} {number}: scope {scope!r} without a key")
        keys.append(_Key(_digest(key), frozenset({scope})))
    return keys, bare


def _warn_bare(bare: list[str]) -> None:
    if bare:
        log.warning(
            "%d API key(s) without a scope (%s) may do everything, admin included; write predict:KEY, "
            "feedback:KEY or admin:KEY",
            len(bare),
            ", ".join(bare),
        )


def _stamp(file: Path) -> tuple[int, int, int]:
    stat = file.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class ApiKeys:
    """The accepted keys and their scopes; ``scopes_of`` compares a presented key with every one in constant
    time, and first re-reads the key file if it changed (at most once per ``RECHECK_SECONDS``)."""

    def __init__(self, env_keys: list[_Key], file: Path | None = None) -> None:
        self._env_keys = env_keys
        self.file = file
        self._file_keys: list[_Key] = []
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        if file is not None:
            self._read_file(at_start=True)

    @classmethod
    def load(cls, env_var: str, file: Path | None) -> ApiKeys:
        env_keys, bare = parse_keys(os.environ.get(env_var, "").split(","), f"{env_var} item")
        _warn_bare(bare)
        return cls(env_keys, file)

    @property
    def enabled(self) -> bool:
        """Whether keys are configured; a configured file with no keys in it refuses every guarded route."""
        return bool(self._env_keys) or self.file is not None

    def _read_file(self, at_start: bool) -> None:
        assert self.file is not None  # noqa: S101 - only called with a file
        try:
            stamp = _stamp(self.file)
            keys, bare = parse_keys(self.file.read_text(encoding="utf-8").splitlines(), f"{self.file} line")
        except (OSError, UnicodeDecodeError, ServeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if at_start:
                raise ServeError(f"cannot read the API key file {self.file}: {reason}") from None
            log.error("API key file %s: %s; the keys read before stay in force", self.file, reason)
            return
        _warn_bare(bare)
        if not at_start:
            log.info("API key file %s changed: %d key(s) now", self.file, len(keys))
        self._file_keys, self._stamp = keys, stamp

    def _refresh(self) -> None:
        if self.file is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + RECHECK_SECONDS
        try:
            changed = _stamp(self.file) != self._stamp
        except OSError:
            changed = True  # gone or unreadable: _read_file says so and keeps the keys
        if changed:
            self._read_file(at_start=False)

    def scopes_of(self, presented: str | None) -> frozenset[str] | None:
        """The scopes of ``presented`` (of every entry it matches), or None for no or an unknown key."""
        principal = self.identify(presented)
        return None if principal is None else principal.scopes

    def identify(self, presented: str | None) -> Principal | None:
        """The caller presenting ``presented``: named by a prefix of the key's hash, with its scopes."""
        if presented is None:
            return None
        self._refresh()
        candidate = _digest(presented)
        scopes: frozenset[str] = frozenset()
        matched = False
        for key in (*self._env_keys, *self._file_keys):  # no early exit: the time does not tell which matched
            hit = hmac.compare_digest(key.digest, candidate)
            matched |= hit
            scopes |= key.scopes if hit else frozenset()
        return Principal(f"key:{candidate.hex()[:16]}", scopes) if matched else None

    def check(self, presented: str | None, scope: str | None = None) -> bool:
        """Whether ``presented`` is a key (of ``scope``, when given)."""
        scopes = self.scopes_of(presented)
        return scopes is not None and (scope is None or scope in scopes)


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
    return None


def _other_methods_only(scope: Scope) -> bool:
    """Whether the path exists only for other methods: routing answers that 405 and runs nothing, and a 401
    would wrongly say that a key could make the method work."""
    router = getattr(scope.get("app"), "router", None)
    partial = False
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return False
        partial = partial or match is Match.PARTIAL
    return partial


class ApiKeyMiddleware:
    """Refuses POSTs without a key (or token) of their route's scope when keys or tokens are configured, any
    /admin/ request without an admin key, and POSTs over ``serve.rate_limit`` (429)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        feedback_paths: Iterable[str] = (),
        tokens: TokenVerifier | None = None,
        limit: RateLimit | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.feedback_paths = frozenset(feedback_paths)
        self.tokens = tokens
        self.limit = limit

    @property
    def enabled(self) -> bool:
        return self.keys.enabled or self.tokens is not None

    def _needed(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX) and not _other_methods_only(scope):
            return ADMIN
        if self.enabled and scope["method"] == "POST":
            return FEEDBACK if path in self.feedback_paths else PREDICT
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            principal: Principal | None = None
            needed = self._needed(scope)
            if needed is not None:
                outcome = await self._authenticate(needed, scope)
                if not isinstance(outcome, Principal):
                    await _refuse(*outcome, scope, receive, send)
                    return
                principal = outcome
            if self.limit is not None and scope["method"] == "POST":
                client = scope.get("client")
                caller = principal.id if principal else f"addr:{client[0] if client else 'unknown'}"
                wait = await self.limit.retry_after(caller)
                if wait is not None:
                    detail = f"over the rate limit of {self.limit.rate}; retry in {wait} s"
                    await _refuse(429, detail, scope, receive, send, {"Retry-After": str(wait)})
                    return
        await self.app(scope, receive, send)

    async def _authenticate(self, needed: str, scope: Scope) -> Principal | tuple[int, str]:
        if not self.enabled:
            return 401, f"admin endpoints need an API key and none is configured ({KEY_SETTINGS})"
        presented = presented_key(scope["headers"])
        if presented is None:
            return 401, "an API key is required: send X-API-Key: KEY or Authorization: Bearer KEY"
        principal = await self._identify(presented)
        if not isinstance(principal, Principal):
            return principal
        if needed not in principal.scopes:
            return 403, f"this key may not use {scope['path']}: it needs a key or token of scope {needed!r}"
        return principal

    async def _identify(self, presented: str) -> Principal | tuple[int, str]:
        if self.tokens is not None:
            from mloop.serve.tokens import looks_like_jwt

            if looks_like_jwt(presented):
                try:  # a JWKS fetch blocks: off the event loop
                    return await run_in_threadpool(self.tokens.principal, presented)
                except HTTPProblem as exc:  # Unauthorized, TokenServiceDown
                    return status_of(exc), str(exc.detail)
        principal = self.keys.identify(presented)
        return principal if principal is not None else (401, "the API key is not valid")


async def _refuse(
    status: int, detail: str, scope: Scope, receive: Receive, send: Send, headers: dict[str, str] | None = None
) -> None:
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="mloop"', **(headers or {})}
    await OrjsonResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


__all__ = ["ADMIN_PREFIX", "SCOPES", "ApiKeyMiddleware", "ApiKeys", "Principal", "parse_keys", "presented_key"]
