"""The events of :class:`MistralBatchJobTrigger`: their one shape, made and read back.

``terminal``: the jobs ended. ``timeout``: the deadline passed. ``error``: polling gave up.
An event is validated when it is made and again when the task resumes with it: any other
shape fails the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.models import BatchJob

EventKind = Literal["terminal", "timeout", "error"]


def job_snapshot(job: BatchJob) -> dict[str, Any]:
    """The job as plain data for a trigger event: everything but inline ``outputs``."""
    return job.model_dump(mode="json", exclude={"outputs"})


class TriggerEventPayload(BaseModel):
    """The one shape a :class:`MistralBatchJobTrigger` event may have.

    ``terminal``: the jobs ended. ``timeout``: the deadline passed (the last snapshots,
    possibly after a cancel). ``error``: polling gave up (snapshots may be missing).
    ``job_id`` is the first job's id and ``job`` its snapshot; a trigger that watched several
    jobs adds ``job_ids`` (all, in order) and ``jobs`` (the snapshots it has); ``resume`` is
    the trigger's ``resume`` kwarg handed back. Any other key is refused.
    """

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    job_id: str
    job: BatchJob | None = None
    jobs: list[BatchJob] = []
    job_ids: list[str] = []
    message: str = ""
    resume: dict[str, Any] | None = None

    @property
    def all_jobs(self) -> list[BatchJob]:
        """Every job snapshot the event carries, in order."""
        if self.jobs:
            return self.jobs
        return [self.job] if self.job is not None else []


def make_event(
    kind: EventKind,
    job_id: str,
    job: BatchJob | None,
    message: str = "",
    jobs: Sequence[BatchJob] = (),
    job_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """A trigger event payload (plain data), validated on the way out as on the way in.

    :param jobs: the snapshots of the jobs when the trigger watched several (shards).
    :param job_ids: every job's id, in order, when the trigger watched several.
    """
    payload: dict[str, Any] = {
        "kind": kind,
        "job_id": job_id,
        "job": job_snapshot(job) if job is not None else None,
        "message": message,
    }
    if len(job_ids) > 1:
        payload["job_ids"] = list(job_ids)
        payload["jobs"] = [job_snapshot(each) for each in jobs]
    TriggerEventPayload.model_validate(payload)
    return payload


def parse_event(event: Any) -> TriggerEventPayload:
    """Accept only the event shapes this provider's trigger yields; anything else fails."""
    if not isinstance(event, dict):
        raise MistralBatchError(f"unexpected trigger event {event!r}: expected a dict")
    try:
        payload = TriggerEventPayload.model_validate(event)
    except ValidationError as exc:
        raise MistralBatchError(f"unexpected trigger event {event!r}: {exc}") from None
    every_job = not payload.job_ids or {job.id for job in payload.jobs} == set(payload.job_ids)
    if payload.kind == "terminal" and (
        not payload.all_jobs
        or not every_job
        or not all(job.is_terminal for job in payload.all_jobs)
    ):
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} says the job ended but carries "
            f"no ended job: {event!r}"
        )
    if payload.job is not None and payload.job.id != payload.job_id:
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} carries another job, {payload.job.id}"
        )
    return payload


__all__ = ["EventKind", "TriggerEventPayload", "job_snapshot", "make_event", "parse_event"]
