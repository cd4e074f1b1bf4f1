"""Resubmit what failed: the requests a retry can fix, sent again in a new job, round by round.

After the jobs of a round end SUCCESS, the requests that failed for a reason a retry can fix
(an error line with status 408, 429 or 5xx, or a timeout error; with ``retry_invalid_output``
also answers whose text does not parse or validate against the output type) are sent again
in a new job: the next round, up to ``retry_failed_requests`` rounds, stopping early when
nothing is left to send. A request the API refused for itself (a 400, say) would fail the
same way again: it is never resubmitted. A job that did not end SUCCESS ends the rounds (the
verdict fails the task; a task retry makes that job again).

Chains: each job of round 0 (one per shard) starts a chain; the chain's job of the next round
carries the requests its previous job failed, read back with their original bodies and
custom_ids from that job's input files. A round has at most one job per chain, and never
needs sharding.

Reattach: a round's job carries its own task key, chained from the previous round's
(:func:`round_key`), and its round (``ROUND_METADATA``). A retried task replays the rounds: it
reattaches to round 0's jobs as before, finds again what they failed (the files do not
change), and reattaches to round 1's job by its key instead of making it again, and so on;
it resumes at the round it was in and never sends a round twice. Keys differ per round, so
the rule for duplicates applies within a round. A deferred task carries the rounds in the
trigger's ``resume`` data (:meth:`Rounds.to_data`).

Results: the rounds' files are joined newest round first (the join keeps a custom_id's first
line) with round 0's input, so each request has one final row (:func:`~.results.
write_job_results`); a request whose newest job ended without success and without its line
is that job's ``expired``/``cancelled``/``missing`` row. The verdict judges the final rows
(:class:`RoundsOutcome`). No ``results_path`` is needed: the requests to resubmit are found
by reading the round's error files (and, for ``retry_invalid_output``, its output files) line
by line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.models import (
    ROUND_METADATA,
    SHARD_METADATA,
    BatchJob,
)
from airflow_provider_mistral_batch.utils.wording import plural

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.batch.input import FileInput
    from airflow_provider_mistral_batch.batch.output_spec import OutputSpec
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

#: Statuses of an error line that a later attempt may not meet: timeout, rate limit, 5xx.
RETRYABLE_STATUS: Final = frozenset({408, 429})
_TIMEOUT: Final = re.compile(r"time[ds]?[ _-]?out", re.IGNORECASE)


def is_retryable(status_code: int | None, error: str | None) -> bool:
    """Whether a failed request may succeed when sent again: status 408, 429 or 5xx, or an
    error that says it timed out (any other 4xx is the request's own fault)."""
    if status_code is not None and (status_code in RETRYABLE_STATUS or 500 <= status_code <= 599):
        return True
    if status_code is not None and 400 <= status_code <= 499:
        return False
    return error is not None and _TIMEOUT.search(error) is not None


def round_key(key: str, round_number: int, retry_invalid_output: bool) -> str:
    """The task key of a chain's job in ``round_number``, from its key in the round before
    (round 0's is the task key of :mod:`.identity`)."""
    raw = json.dumps([key, "round", round_number, retry_invalid_output])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Retryable:
    """The requests of one job to send again.

    :param failed: custom_ids of the error lines a retry can fix.
    :param invalid: custom_ids of the answers the output type refused.
    """

    failed: frozenset[str]
    invalid: frozenset[str]

    @property
    def ids(self) -> frozenset[str]:
        return self.failed | self.invalid


def retryable_requests(hook: MistralBatchHook, job: BatchJob, spec: OutputSpec | None) -> Retryable:
    """The requests of an ended job to send again: its error file's retryable lines and, with
    ``spec``, its output file's answers that ``spec`` refuses. Lines without a custom_id
    cannot be matched with their request: they are never sent again."""
    from airflow_provider_mistral_batch.batch.result_lines import read_result_line

    failed: set[str] = set()
    invalid: set[str] = set()
    files = [job.error_file] + ([job.output_file] if spec is not None else [])
    for file_id in files:
        if not file_id:
            continue
        for number, raw in enumerate(hook.iter_file_lines(file_id), start=1):
            read = read_result_line(raw, number)
            if read.custom_id is None:
                continue
            if not read.succeeded:
                if is_retryable(read.status_code, read.error):
                    failed.add(read.custom_id)
            elif spec is not None and spec.problem_of(bytes(read.body)) is not None:
                invalid.add(read.custom_id)
    return Retryable(frozenset(failed), frozenset(invalid))


def round_input(
    hook: MistralBatchHook, job: BatchJob, ids: frozenset[str], round_number: int
) -> tuple[FileInput, frozenset[str]] | None:
    """The next round's input: the lines of ``job``'s input files whose custom_id is in
    ``ids``, as sent (a temporary file, to delete once its job exists), and the ids written.
    None when none is there (a job with no input files: inline requests)."""
    from airflow_provider_mistral_batch.batch.input import FileInput
    from airflow_provider_mistral_batch.batch.request_lines import custom_id_or_none

    written: set[str] = set()
    size = 0
    handle, name = tempfile.mkstemp(prefix=f"mistral-round-{round_number}-", suffix=".jsonl")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            for file_id in job.input_files:
                for line in hook.iter_file_lines(file_id):
                    custom_id = custom_id_or_none(line)
                    if custom_id in ids and custom_id not in written:
                        data = line.encode() + b"\n"
                        out.write(data)
                        size += len(data)
                        written.add(custom_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if not written:
        path.unlink(missing_ok=True)
        return None
    filename = f"{job.id}-round-{round_number}.jsonl"
    part = FileInput(path, len(written), size, "", temporary=True, filename=filename)
    return part, frozenset(written)


class Round(BaseModel):
    """One round: its jobs, one per chain still going, in chain order.

    :param job_ids: the jobs.
    :param keys: their task keys; not in :meth:`Rounds.to_data` (only the last round's are
        needed again: they travel once).
    :param chains: the round-0 job (shard, 0-based) each one continues.
    :param failed: per job, the requests it sent again that had failed (0 in round 0).
    :param invalid: per job, the requests it sent again whose answer was invalid.
    """

    model_config = ConfigDict(extra="forbid")

    job_ids: list[str]
    # Data of older versions carries each round's keys: still read.
    keys: list[str] = Field(default_factory=list, exclude=True)
    chains: list[int]
    failed: list[int]
    invalid: list[int]


class _RoundsData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: list[Round]
    #: The last round's task keys (older data: None, each round carries its own).
    keys: list[str] | None = None


class Rounds:
    """The bookkeeping of a task's rounds: each round's jobs, and the snapshots known."""

    def __init__(self, rounds: list[Round], jobs: Iterable[BatchJob] = ()) -> None:
        self.rounds = rounds
        self._jobs = {job.id: job for job in jobs}

    @classmethod
    def first(cls, jobs: Sequence[BatchJob], keys: Sequence[str]) -> Rounds:
        """Round 0: the task's jobs and their task keys."""
        zeros = [0] * len(jobs)
        first = Round(
            job_ids=[job.id for job in jobs],
            keys=list(keys),
            chains=list(range(len(jobs))),
            failed=zeros,
            invalid=list(zeros),
        )
        return cls([first], jobs)

    @classmethod
    def from_data(cls, data: Any) -> Rounds:
        """The rounds from :meth:`to_data` (a trigger event's ``resume``)."""
        try:
            read = _RoundsData.model_validate(data)
        except ValidationError as exc:
            raise MistralBatchError(f"unexpected resubmit rounds {data!r}: {exc}") from None
        if read.keys is not None and read.rounds:
            if len(read.keys) != len(read.rounds[-1].job_ids):
                raise MistralBatchError(f"unexpected resubmit rounds {data!r}: keys per job")
            read.rounds[-1].keys = read.keys
        return cls(read.rounds)

    def to_data(self) -> dict[str, Any]:
        """Plain data for a trigger's ``resume``: the rounds, and the last one's keys (the
        earlier rounds' are not needed again: 1,000 shards make 40 kB of keys a round)."""
        keys = self.rounds[-1].keys if self.rounds else None
        return _RoundsData(rounds=self.rounds, keys=keys).model_dump(mode="json")

    def next_keys(self, retry_invalid_output: bool) -> list[str]:
        """The task keys the next round's jobs would have, one per chain still going (a
        killed task finds by them the jobs a create in flight made)."""
        number = len(self.rounds)
        return [round_key(key, number, retry_invalid_output) for key in self.rounds[-1].keys]

    @property
    def job_ids(self) -> list[list[str]]:
        """Each round's job ids, round 0 first."""
        return [list(each.job_ids) for each in self.rounds]

    def ended(self, jobs: Sequence[BatchJob]) -> None:
        """Record the ended jobs of the last round (a wait that followed the kept one of
        duplicate jobs ended with another id)."""
        self.rounds[-1].job_ids = [job.id for job in jobs]
        self._jobs.update((job.id, job) for job in jobs)

    def jobs(self, hook: MistralBatchHook) -> list[list[BatchJob]]:
        """Each round's jobs; those not known here (a resumed task's earlier rounds) are read."""
        for job_id in (job_id for ids in self.job_ids for job_id in ids):
            if job_id not in self._jobs:
                self._jobs[job_id] = hook.get_batch_job(job_id)
        return [[self._jobs[job_id] for job_id in ids] for ids in self.job_ids]

    def outcome(self, hook: MistralBatchHook) -> RoundsOutcome:
        """What the rounds come to, for the verdict, the final line and XCom."""
        by_round = self.jobs(hook)
        return RoundsOutcome(
            rounds=self.job_ids,
            jobs=[job for jobs in by_round for job in jobs],
            final_jobs=_final_jobs(self.rounds, by_round),
            resubmitted=[sum(job.total_requests for job in jobs) for jobs in by_round[1:]],
        )


def _final_jobs(rounds: Sequence[Round], by_round: Sequence[Sequence[BatchJob]]) -> list[BatchJob]:
    """Each chain as its final rows stand: its round-0 job with the counts of the final rows
    (a resubmitted request counts once, by its newest round) and its requests, or, when the
    chain's last job did not succeed, that job (the verdict names it) with those counts."""
    final: list[BatchJob] = []
    for chain, head in enumerate(by_round[0]):
        # The chain's job in each round it reached, with what that job sent again.
        links = [
            (jobs[place], each.failed[place], each.invalid[place])
            for each, jobs in zip(rounds, by_round, strict=True)
            for place, number in enumerate(each.chains)
            if number == chain
        ]
        last = links[-1][0]
        # A request sent again had a failed (or invalid) row in the round before: its newest
        # row replaces that one.
        failed = max(0, sum(job.failed_requests - again for job, again, _ in links))
        succeeded = max(0, sum(job.succeeded_requests - again for job, _, again in links))
        final.append(
            (head if last.status.is_success else last).model_copy(
                update={
                    "total_requests": head.total_requests,
                    "failed_requests": failed,
                    "succeeded_requests": succeeded,
                    "completed_requests": failed + succeeded,
                }
            )
        )
    return final


@dataclass(frozen=True)
class RoundsOutcome:
    """What a task's rounds came to.

    :param rounds: each round's job ids, round 0 first.
    :param jobs: every job, round by round.
    :param final_jobs: one per chain, as its final rows stand (see :func:`_final_jobs`): what
        the verdict judges and the summary sums.
    :param resubmitted: requests sent again in each round after round 0.
    """

    rounds: list[list[str]]
    jobs: list[BatchJob]
    final_jobs: list[BatchJob]
    resubmitted: list[int]

    @property
    def note(self) -> str:
        """What each round sent again, for the final line (empty with no round after 0)."""
        parts = []
        for number, (count, ids) in enumerate(
            zip(self.resubmitted, self.rounds[1:], strict=True), start=1
        ):
            jobs = f"job {ids[0]}" if len(ids) == 1 else f"jobs {', '.join(ids)}"
            what = plural(count, "request") if number == 1 else f"{count:,}"
            parts.append(f"{what} in round {number} ({jobs})")
        return f"resubmitted {', '.join(parts)}" if parts else ""

    def as_xcom(self) -> dict[str, Any]:
        """The summary's lists of every job of every round (round 0 first), and the rounds."""
        return {
            "job_ids": [job.id for job in self.jobs],
            "output_files": [job.output_file for job in self.jobs],
            "error_files": [job.error_file for job in self.jobs],
            "rounds": [list(ids) for ids in self.rounds],
            "resubmitted": list(self.resubmitted),
        }


#: Creates a round's job from its input file and metadata (the operator's create).
CreateJob = Callable[["FileInput", dict[str, str]], BatchJob]


def next_round(
    hook: MistralBatchHook,
    log: Any,
    rounds: Rounds,
    *,
    max_rounds: int,
    spec: OutputSpec | None,
    retry_invalid_output: bool,
    identity: tuple[str, str, str, int],
    metadata: Mapping[str, str],
    reattach: bool,
    create: CreateJob,
) -> list[BatchJob] | None:
    """Start the next round after the last one's jobs ended: for each job, send again what
    it failed (reattaching to the job of the round's key an earlier try made); None when no
    round follows (``max_rounds`` reached, a job did not succeed, nothing to send again).

    :param spec: what answers are checked against (``retry_invalid_output``); None: only
        error lines are sent again.
    """
    from airflow_provider_mistral_batch.batch.identity import find_job_to_reattach, task_metadata

    number = len(rounds.rounds)
    if number > max_rounds:
        return None
    last = rounds.rounds[-1]
    ended = rounds.jobs(hook)[-1]
    if not all(job.status.is_success for job in ended):
        return None
    chains = len(rounds.rounds[0].job_ids)
    made = Round(job_ids=[], keys=[], chains=[], failed=[], invalid=[])
    jobs: list[BatchJob] = []
    for job, key, chain in zip(ended, last.keys, last.chains, strict=True):
        found = retryable_requests(hook, job, spec)
        if not found.ids:
            continue
        next_key = round_key(key, number, retry_invalid_output)
        kept = find_job_to_reattach(hook, next_key, log) if reattach else None
        if kept is not None:
            log.info(
                "Reattaching to Mistral batch job %s (round %s, status %s) created by an "
                "earlier try",
                kept.id,
                number,
                kept.status,
            )
            sent = found.ids
        else:
            part = round_input(hook, job, found.ids, number)
            if part is None:
                log.warning(
                    "Cannot resubmit %s of Mistral batch job %s: its input files do not hold them",
                    plural(len(found.ids), "request"),
                    job.id,
                )
                continue
            prepared, sent = part
            log.info(
                "Round %s: resubmitting %s of Mistral batch job %s (%s failed, %s invalid)",
                number,
                plural(len(sent), "request"),
                job.id,
                len(sent & found.failed),
                len(sent & found.invalid),
            )
            tags = {**metadata, **task_metadata(identity, next_key), ROUND_METADATA: str(number)}
            if chains > 1:
                tags[SHARD_METADATA] = f"{chain + 1}/{chains}"
            try:
                kept = create(prepared, tags)
            finally:
                prepared.path.unlink(missing_ok=True)
        jobs.append(kept)
        made.job_ids.append(kept.id)
        made.keys.append(next_key)
        made.chains.append(chain)
        made.failed.append(len(sent & found.failed))
        made.invalid.append(len(sent & found.invalid))
    if not jobs:
        return None
    rounds.rounds.append(made)
    rounds.ended(jobs)
    return jobs


def push_rounds(context: Mapping[str, Any], rounds: Rounds) -> None:
    """Push each round's job ids, and every job id (round 0 first), for the UI and the next
    tasks, as soon as a round starts."""
    from airflow_provider_mistral_batch.batch.manifest import XCOM_JOB_IDS, XCOM_ROUNDS

    ti = context["ti"]
    ti.xcom_push(key=XCOM_ROUNDS, value=rounds.job_ids)
    ti.xcom_push(key=XCOM_JOB_IDS, value=[job_id for ids in rounds.job_ids for job_id in ids])


__all__ = [
    "RETRYABLE_STATUS",
    "CreateJob",
    "Retryable",
    "Round",
    "Rounds",
    "RoundsOutcome",
    "is_retryable",
    "next_round",
    "push_rounds",
    "retryable_requests",
    "round_input",
    "round_key",
]
