"""Errors a user of mloop can see: every one of them, defined here and drawn in this tree.

Every error says what was wrong, where (file, column, row, field) and what to do. The classes say what
went wrong, not how to answer it: only ``cli`` turns them into exit codes (``mloop.cli.main.EXIT_CODES``)
and only ``serve`` into HTTP responses (``mloop.serve.http.STATUS``). This module imports nothing heavy,
so the CLI can load it before it knows which command runs.

    MloopError
    ├── ConfigError            mloop.yaml is missing, malformed or has an unknown key
    ├── ExportError            an option of `mloop export` cannot make a working pipeline
    ├── SourceError            a data source cannot be read (missing file, not a table, bad URI)
    ├── ContractError          a snapshot breaks the data contract, or the contract file is broken
    ├── PredictionLogError     the prediction log (SQLite or PostgreSQL) cannot be opened, read or written
    │   └── DuplicateRequestId     a row's request_id is already in the log: the row is at fault, not the store
    ├── ProfileError           a reference profile cannot be built from the data given, or read back
    ├── TrainError             training cannot run (missing target, too few rows, bad split)
    ├── TrackingError          the MLflow store cannot be reached or written
    ├── RegistryError          no such version, no champion, nothing to roll back to
    │   └── AuditChainBroken       the audit log's hash chain does not hold: an entry was edited, deleted or moved
    ├── ServeError             the server cannot load or use its model
    │   ├── HTTPProblem            a request the server refuses; ``detail`` is the answer's body
    │   │   ├── InvalidInput           the body or a field of it breaks the route's documented schema
    │   │   │   └── InconsistentInput      the body fits the schema but breaks a rule it cannot express
    │   │   ├── UnknownRequestIds      feedback for request ids the log does not have
    │   │   ├── NotFound               no such model or version on this server
    │   │   ├── PayloadTooLarge        too many records or bytes in one request
    │   │   ├── UnsupportedMediaType   a content type the route cannot read
    │   │   ├── Unauthorized           no or a wrong API key, or a token that does not verify
    │   │   ├── TokenServiceDown       the JWKS that verifies bearer tokens cannot be fetched
    │   │   └── ModelUnavailable       no model is loaded yet, or the prediction log is not open
    │   └── StreamError            a stream URI is malformed, or its broker cannot be reached or written
    ├── MonitorError           monitoring has no data or no reference
    └── RetrainError           retraining cannot run
        └── LockBusy               another controller is retraining this project right now
"""

from __future__ import annotations

from typing import Any


class MloopError(Exception):
    """Base of every error mloop raises on purpose; its message is meant for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MloopError):
    pass


class ExportError(MloopError):
    """An option of `mloop export` that cannot make a working pipeline."""


class SourceError(MloopError):
    pass


class ContractError(MloopError):
    pass


class PredictionLogError(MloopError):
    """The prediction log cannot be opened, read or written: no driver, a bad URL, a failing database."""


class DuplicateRequestId(PredictionLogError):
    """A row's request_id is already in the log: the row, not the store, is at fault."""


class ProfileError(MloopError):
    """A reference profile cannot be built from the data given, or the stored one cannot be read."""


class TrainError(MloopError):
    pass


class TrackingError(MloopError):
    pass


class RegistryError(MloopError):
    pass


class AuditChainBroken(RegistryError):
    """The audit log's hash chain does not hold: an entry was edited, deleted, inserted or moved."""


class ServeError(MloopError):
    pass


class HTTPProblem(ServeError):
    """A request the server refuses; ``detail`` becomes the JSON body and ``headers`` go with the answer.

    The status code of each kind is decided in ``mloop.serve.http.STATUS``, not here.
    """

    def __init__(self, detail: str | list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else f"{len(detail)} problem(s) with the request")
        self.detail = detail
        self.headers = headers


class InvalidInput(HTTPProblem):
    pass


class InconsistentInput(InvalidInput):
    """A body that its route's OpenAPI schema admits but that breaks a rule JSON Schema cannot state, as the
    schema's description does in words: a tensor's shape against its data, columns of unequal length, CSV
    content, feature names and types inside column-oriented formats."""


class UnknownRequestIds(HTTPProblem):
    pass


class NotFound(HTTPProblem):
    pass


class PayloadTooLarge(HTTPProblem):
    pass


class UnsupportedMediaType(HTTPProblem):
    pass


class Unauthorized(HTTPProblem):
    pass


class TokenServiceDown(HTTPProblem):
    pass


class ModelUnavailable(HTTPProblem):
    pass


class StreamError(ServeError):
    """A stream URI that cannot be used, or a broker that cannot be reached or written (`mloop stream`)."""


class MonitorError(MloopError):
    pass


class RetrainError(MloopError):
    pass


class LockBusy(RetrainError):
    """Another controller is retraining this project right now."""


__all__ = [
    "AuditChainBroken",
    "ConfigError",
    "ContractError",
    "DuplicateRequestId",
    "ExportError",
    "HTTPProblem",
    "InconsistentInput",
    "InvalidInput",
    "LockBusy",
    "MloopError",
    "ModelUnavailable",
    "MonitorError",
    "NotFound",
    "PayloadTooLarge",
    "PredictionLogError",
    "ProfileError",
    "RegistryError",
    "RetrainError",
    "ServeError",
    "StreamError",
    "TokenServiceDown",
    "SourceError",
    "TrackingError",
    "TrainError",
    "Unauthorized",
    "UnknownRequestIds",
    "UnsupportedMediaType",
]
