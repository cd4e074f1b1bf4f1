"""How long a deferred task's trigger holds an early event: from Airflow's own settings."""

from __future__ import annotations

import time

import pytest

from airflow_provider_mistral_batch.batch.deferral import (
    MARGIN_SECONDS,
    exit_report_seconds,
    hold_events_until,
)


def test_the_bound_is_airflows_waits_plus_a_margin_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", raising=False)
    monkeypatch.delenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", raising=False)
    # Airflow's defaults: the supervisor's 5 s select() and the scheduler's 1 s idle sleep.
    assert exit_report_seconds() == 5.0 + 1.0 + MARGIN_SECONDS


def test_the_bound_follows_the_deployments_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "30")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "2.5")
    assert exit_report_seconds() == 30.0 + 2.5 + MARGIN_SECONDS


def test_the_hold_is_an_absolute_epoch_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "5")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "1")
    assert hold_events_until(1_800_000_000.0) == 1_800_000_000.0 + 6.0 + MARGIN_SECONDS
    before = time.time()
    hold = hold_events_until()
    assert before + exit_report_seconds() <= hold <= time.time() + exit_report_seconds()
