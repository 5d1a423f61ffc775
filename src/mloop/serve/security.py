"""API keys: from an environment variable and/or a file, compared in constant time, never logged.

With keys configured every POST (predict, feedback, invocations, V2 infer) needs one, sent as
``X-API-Key: KEY`` or ``Authorization: Bearer KEY``; GET endpoints (health, readiness, metrics,
model description, docs) stay open for probes and scrapers. ``/admin/*`` always needs a key: without
keys configured it is refused, so a server is never administrable by accident.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from mloop.errors import ServeError
from mloop.serve.http import OrjsonResponse

ADMIN_PREFIX = "/admin/"


class ApiKeys:
    """The accepted keys; ``check`` compares a presented key with every one in constant time."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @classmethod
    def load(cls, env_var: str, file: Path | None) -> ApiKeys:
        keys = [k.strip() for k in os.environ.get(env_var, "").split(",")]
        if file is not None:
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ServeError(f"cannot read the API key file {file}: {exc.strerror}") from None
            keys += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, presented: str | None) -> bool:
        if presented is None:
            return False
        candidate = presented.encode()
        matched = False
        for key in self._keys:  # no early exit: the time does not tell which key (or how much) matched
            matched |= hmac.compare_digest(key, candidate)
        return matched


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
    return None


class ApiKeyMiddleware:
    """Refuses POSTs without a valid key (when keys are configured) and any /admin/ request without one."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            admin = path.startswith(ADMIN_PREFIX)
            if admin or (self.keys.enabled and scope["method"] == "POST"):
                problem = self._problem(admin, presented_key(scope["headers"]))
                if problem is not None:
                    response = OrjsonResponse(
                        {"detail": problem}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="mloop"'}
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _problem(self, admin: bool, presented: str | None) -> str | None:
        if admin and not self.keys.enabled:
            return "admin endpoints need an API key and none is configured (serve.api_keys_env / serve.api_keys_file)"
        if presented is None:
            return "an API key is required: send X-API-Key: KEY or Authorization: Bearer KEY"
        if not self.keys.check(presented):
            return "the API key is not valid"
        return None


__all__ = ["ADMIN_PREFIX", "ApiKeyMiddleware", "ApiKeys", "presented_key"]
