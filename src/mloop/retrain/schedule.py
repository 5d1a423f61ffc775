"""Cron schedules for retraining (``retrain.schedule``), evaluated in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from mloop.errors import RetrainError


def due_since(expression: str, last: datetime, now: datetime | None = None) -> datetime | None:
    """The first time ``expression`` names after ``last``, if it is not in the future; else ``None``.

    Catching up is one retrain, not one per missed time: a controller that was down for a week of
    daily schedules retrains once.
    """
    try:
        from croniter import croniter
    except ImportError:
        raise RetrainError(
            "retrain.schedule needs croniter, a dependency of mloop that is missing from this environment; "
            "reinstall mloop: pip install mloop"
        ) from None
    moment = now or datetime.now(UTC)
    start = last if last.tzinfo else last.replace(tzinfo=UTC)
    following: datetime = croniter(expression, start).get_next(datetime)
    return following if following <= moment else None
