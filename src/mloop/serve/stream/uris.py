"""Stream URIs: ``redis://HOST:PORT/DB?stream=NAME``, ``nats://HOST:PORT?stream=NAME&subject=SUBJ``,
``kafka://HOST:PORT?topic=NAME``; parsed into a ``StreamTarget`` or refused with a message naming the part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlsplit

from mloop.errors import StreamError

SCHEMES = {"redis": 6379, "rediss": 6379, "nats": 4222, "tls": 4222, "kafka": 9092}
REQUIRED = {"redis": "stream", "rediss": "stream", "nats": "stream", "tls": "stream", "kafka": "topic"}
KNOWN = {
    "redis": {"stream", "dedup_ttl", "maxlen"},
    "nats": {"stream", "subject", "dedup_window", "ack_wait"},
    "kafka": {"topic"},
}
_NAME = re.compile(r"^[A-Za-z0-9_.:\-{}]{1,200}$")
_NATS_STREAM = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")  # JetStream stream names: no dots, spaces or wildcards


@dataclass(frozen=True)
class StreamTarget:
    """One stream of one broker: where events are read from or answers written to."""

    scheme: str
    host: str
    port: int
    name: str  # the Redis stream, JetStream stream or Kafka topic
    db: int = 0
    subject: str | None = None  # NATS only: the subject events are published on
    options: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return {"rediss": "redis", "tls": "nats"}.get(self.scheme, self.scheme)

    @property
    def label(self) -> str:
        """A name for metrics and logs, without credentials: ``redis://127.0.0.1:6379/0/events``."""
        where = f"{self.scheme}://{self.host}:{self.port}"
        return f"{where}/{self.db}/{self.name}" if self.kind == "redis" else f"{where}/{self.name}"

    def sibling(self, suffix: str) -> StreamTarget:
        """The same broker, another stream: ``events`` → ``events-dead`` (the default dead-letter stream)."""
        name = f"{self.name}{suffix}"
        subject = f"{self.subject or self.name}{suffix.replace('-', '.')}" if self.kind == "nats" else None
        return replace(self, name=name, subject=subject)


def parse_stream_uri(uri: str, what: str = "stream") -> StreamTarget:
    """The ``StreamTarget`` of ``uri``; ``what`` names the option in errors (``--source``, ``--sink``)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise StreamError(f"{what} {_shown(uri)}: not a valid URI ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StreamError(
            f"{what} {_shown(uri)}: unknown scheme {scheme!r}; use redis://HOST:PORT/DB?stream=NAME, "
            "nats://HOST:PORT?stream=NAME&subject=SUBJECT or kafka://HOST:PORT?topic=NAME"
        )
    if not parts.hostname:
        raise StreamError(f"{what} {_shown(uri)}: no host; write {scheme}://HOST:PORT…")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query)
    kind = {"rediss": "redis", "tls": "nats"}.get(scheme, scheme)
    unknown = sorted(set(options) - KNOWN[kind])
    if unknown:
        raise StreamError(
            f"{what} {_shown(uri)}: unknown parameter(s) {', '.join(unknown)}; "
            f"{kind} takes {', '.join(sorted(KNOWN[kind]))}"
        )
    required = REQUIRED[scheme]
    name = options.pop(required, "")
    if not name:
        raise StreamError(f"{what} {_shown(uri)}: no {required}; add ?{required}=NAME")
    pattern = _NATS_STREAM if kind == "nats" else _NAME
    if not pattern.match(name):
        raise StreamError(f"{what} {_shown(uri)}: {required} {name!r} has characters {kind} does not allow")
    db = 0
    path = parts.path.strip("/")
    if kind == "redis" and path:
        if not path.isdigit():
            raise StreamError(f"{what} {_shown(uri)}: the database {path!r} is not a number; write /0, /1, …")
        db = int(path)
    elif path:
        raise StreamError(f"{what} {_shown(uri)}: {kind} URIs have no path; put the stream in ?{required}=")
    subject = options.pop("subject", None) if kind == "nats" else None
    if "ack_wait" in options and not _positive(options["ack_wait"]):
        raise StreamError(f"{what} {_shown(uri)}: ack_wait must be a positive number of seconds")
    for key in ("dedup_ttl", "maxlen", "dedup_window"):
        if key in options and not options[key].isdigit():
            raise StreamError(f"{what} {_shown(uri)}: {key} must be a whole number, not {options[key]!r}")
    return StreamTarget(
        scheme=scheme,
        host=parts.hostname,
        port=port or SCHEMES[scheme],
        name=name,
        db=db,
        subject=subject or (name if kind == "nats" else None),
        options=options,
        username=parts.username or None,
        password=parts.password or None,
    )


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _shown(uri: str) -> str:
    """``uri`` with any password masked, for an error message."""
    parts = urlsplit(uri) if "://" in uri else None
    if parts is None or not parts.password:
        return repr(uri)
    return repr(uri.replace(f":{parts.password}@", ":***@", 1))


__all__ = ["StreamTarget", "parse_stream_uri"]
