"""Request rate limits per caller (an API key, a token's subject, or a client address), with ``limits``.

Counts live in ``serve.rate_limit_storage``: memory (each worker process its own count, so N workers
admit up to N times the rate) or Redis (one count across workers and replicas). A storage that fails
admits the request and says so in the log: a limit guards against floods, it is not authentication.
"""

from __future__ import annotations

import logging
import math
import time

from mloop.errors import ServeError

log = logging.getLogger(__name__)

NAMESPACE = "mloop"
WARN_EVERY_SECONDS = 60.0


class RateLimit:
    """``rate`` (``'100/second'``) per caller, a fixed window in ``storage`` (``memory://``, ``redis://…``)."""

    def __init__(self, rate: str, storage: str = "memory://") -> None:
        from limits import parse
        from limits.aio.strategies import FixedWindowRateLimiter
        from limits.errors import ConfigurationError
        from limits.storage import storage_from_string

        self.rate = rate
        self._item = parse(rate)
        uri = storage if storage.startswith("async+") else f"async+{storage}"
        # Redis through redis-py's asyncio client (the redis package of mloop[stream]), not coredis.
        options = {"implementation": "redispy"} if "redis" in uri.split("://", 1)[0] else {}
        try:
            backend = storage_from_string(uri, **options)
        except ConfigurationError as exc:
            raise ServeError(f"serve.rate_limit_storage {storage!r} cannot be used: {exc}") from None
        self._backend = backend
        self._limiter = FixedWindowRateLimiter(backend)
        self._next_warning = 0.0

    async def close(self) -> None:
        """Close a Redis connection pool, if the storage holds one (memory holds none)."""
        client = getattr(getattr(self._backend, "bridge", None), "storage", None)
        closing = getattr(client, "aclose", None)
        if closing is not None:
            await closing()

    async def retry_after(self, caller: str) -> int | None:
        """None when ``caller`` may go on (and is counted), else the seconds until its window resets."""
        try:
            if await self._limiter.hit(self._item, NAMESPACE, caller):
                return None
            stats = await self._limiter.get_window_stats(self._item, NAMESPACE, caller)
        except Exception as exc:  # noqa: BLE001 - the storage is down: admit rather than refuse everyone
            now = time.monotonic()
            if now >= self._next_warning:
                self._next_warning = now + WARN_EVERY_SECONDS
                log.error("rate limit storage failed (%s): requests are admitted unlimited", type(exc).__name__)
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))


__all__ = ["RateLimit"]
