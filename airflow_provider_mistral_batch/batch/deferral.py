"""When a deferred task's trigger may fire: not before Airflow has seen the deferring process end.

A task defers in two steps that Airflow does not order: the task process asks the execution
API to set the task DEFERRED (the trigger can start from then on), then it exits, and the
executor reports that exit to the scheduler as the end of the try ("success") some seconds
later. If the trigger has fired meanwhile, the scheduler has already queued the resumed task,
takes the stale report for a task killed from outside and fails it ("finished with state
success, but the task instance's state attribute is queued"; apache/airflow#67287 and #72716.
3.3 ignores the report only while the task is still ``scheduled``, 3.1 never).

Where the delay comes from, in Airflow's source: the worker's supervisor waits for its task
process in ``select()`` for up to ``[workers] min_heartbeat_interval`` (5 s) and may notice the
exit only at the end of that wait; the executor hands the result over at the scheduler's next
loop, which sleeps up to ``[scheduler] scheduler_idle_sleep_time`` (1 s) when idle. Nothing the
trigger could read marks the moment the scheduler has read the report, so the trigger holds an
event that comes sooner than this bound plus a margin (process teardown, log upload, a busy
scheduler loop) after the deferral.
"""

from __future__ import annotations

import time
from typing import Final

from airflow_provider_mistral_batch.utils.compat import conf

#: Seconds on top of Airflow's own waits: the deferring process's teardown and log upload and a
#: scheduler loop busy with other work. On two cores under a load of 6-7 the scheduler read the
#: report 0.3-10.2 s after the deferral (100 deferrals; docs/deployment.md), 16 s in all here.
MARGIN_SECONDS: Final = 10.0


def exit_report_seconds() -> float:
    """How long after a deferral the scheduler may still read the report of the deferring
    process's exit: ``min_heartbeat_interval`` + ``scheduler_idle_sleep_time`` + a margin,
    from the configuration of the worker that defers (its supervisor is the one waiting)."""
    heartbeat = conf.getfloat("workers", "min_heartbeat_interval", fallback=5.0)
    idle_sleep = conf.getfloat("scheduler", "scheduler_idle_sleep_time", fallback=1.0)
    return max(0.0, heartbeat) + max(0.0, idle_sleep) + MARGIN_SECONDS


def hold_events_until(deferred_at: float | None = None) -> float:
    """The epoch second before which a trigger deferred at ``deferred_at`` (default: now) holds
    its event: plain data for the trigger's kwargs, the same after a triggerer restart."""
    start = time.time() if deferred_at is None else deferred_at
    return start + exit_report_seconds()
