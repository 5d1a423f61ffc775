"""Errors a user of mloop can see.

Every error says what was wrong, where (file, column, row, field) and what to do. Only ``cli`` turns
them into exit codes and only ``serve`` into HTTP responses.

    MloopError
    ├── ConfigError        mloop.yaml is missing, malformed or has an unknown key
    ├── SourceError        a data source cannot be read (missing file, not a table, bad URI)
    ├── ContractError      a snapshot breaks the data contract, or the contract file is broken
    ├── TrainError         training cannot run (missing target, too few rows, bad split)
    ├── TrackingError      the MLflow store cannot be reached or written
    ├── RegistryError      no such version, no champion, nothing to roll back to
    ├── ServeError         the server cannot load or use its model
    ├── MonitorError       monitoring has no data or no reference
    └── RetrainError       retraining cannot run
"""

from __future__ import annotations


class MloopError(Exception):
    """Base of every error mloop raises on purpose; its message is meant for a person."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(MloopError):
    exit_code = 2


class SourceError(MloopError):
    exit_code = 3


class ContractError(MloopError):
    exit_code = 4


class TrainError(MloopError):
    exit_code = 5


class TrackingError(MloopError):
    exit_code = 6


class RegistryError(MloopError):
    exit_code = 7


class ServeError(MloopError):
    exit_code = 8


class MonitorError(MloopError):
    exit_code = 9


class RetrainError(MloopError):
    exit_code = 10


__all__ = [
    "ConfigError",
    "ContractError",
    "MloopError",
    "MonitorError",
    "RegistryError",
    "RetrainError",
    "ServeError",
    "SourceError",
    "TrackingError",
    "TrainError",
]
