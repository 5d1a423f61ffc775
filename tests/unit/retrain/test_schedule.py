from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mloop.config import RetrainConfig
from mloop.retrain.schedule import due_since


def test_a_cron_time_after_the_last_retrain_is_due_once_it_has_passed() -> None:
    last = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    daily_3am = "0 3 * * *"
    assert due_since(daily_3am, last, now=datetime(2026, 1, 6, 2, 59, tzinfo=UTC)) is None
    assert due_since(daily_3am, last, now=datetime(2026, 1, 6, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 6, 3, tzinfo=UTC)
    # A week down: one catch-up retrain, at the first missed time.
    assert due_since(daily_3am, last, now=datetime(2026, 1, 13, tzinfo=UTC)) == datetime(2026, 1, 6, 3, tzinfo=UTC)


def test_naive_times_are_utc() -> None:
    assert due_since("*/10 * * * *", datetime(2026, 1, 1, 0, 1), now=datetime(2026, 1, 1, 0, 10, tzinfo=UTC))


def test_the_config_rejects_an_invalid_cron_expression() -> None:
    assert RetrainConfig(schedule="0 3 * * 0").schedule == "0 3 * * 0"
    with pytest.raises(ValueError, match="not a cron expression"):
        RetrainConfig(schedule="every sunday")
