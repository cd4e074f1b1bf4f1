"""The background life of one batch job: queue, validation, paced processing, results."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from airflow_provider_mistral_batch.models import (
    MAX_REQUESTS_PER_JOB,
    BatchError,
    BatchJobStatus,
    FilePurpose,
    FileSource,
    FileVisibility,
    SampleType,
)
from mistral_batch_emulator.config import EmulatorConfig
from mistral_batch_emulator.files import FileStore, StoredFile, now
from mistral_batch_emulator.flaky import FlakyRequests
from mistral_batch_emulator.jobs import JobRecord
from mistral_batch_emulator.results import (
    JobContext,
    LineError,
    ResultWriter,
    parse_line,
)

log = logging.getLogger(__name__)

#: How often a running job wakes up to complete the requests its rate allows.
TICK_SECONDS = 0.05
#: Most requests handled before yielding to the event loop, so pollers stay served.
SLICE_REQUESTS = 2000
#: Lines scanned during validation between two yields to the event loop.
SCAN_SLICE_LINES = 20000

Stop = Literal["cancel", "timeout"]


class _Unusable(Exception):
    """The input cannot be used at all: the job FAILS with this message."""

    def __init__(self, message: str, count: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.count = count


@dataclass
class _Source:
    """One input to read: a label for messages and an open binary handle."""

    label: str
    handle: IO[bytes]
    inline: bool


class _ResultFile:
    """An output or error file being written; registered as a real file when the job ends."""

    def __init__(self, file_id: str, path: Path) -> None:
        self.file_id = file_id
        self.path = path
        self.bytes = 0
        self.lines = 0
        self._hash = hashlib.sha256()
        self._handle: IO[bytes] | None = None

    def write(self, lines: list[str]) -> None:
        if self._handle is None:
            self._handle = self.path.open("ab")
        data = ("\n".join(lines) + "\n").encode()
        self._handle.write(data)
        self._handle.flush()
        self._hash.update(data)
        self.bytes += len(data)
        self.lines += len(lines)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def stored(self, filename: str, sample_type: SampleType) -> StoredFile:
        self.close()
        self.path.touch()
        return StoredFile(
            id=self.file_id,
            path=self.path,
            filename=filename,
            purpose=FilePurpose.BATCH,
            sample_type=sample_type,
            source=FileSource.MISTRAL,
            bytes=self.bytes,
            num_lines=self.lines,
            created_at=now(),
            mimetype="application/jsonl",
            signature=self._hash.hexdigest()[:16],
            visibility=FileVisibility.WORKSPACE,
        )


class JobRunner:
    """Drives one job from QUEUED to a terminal status."""

    def __init__(
        self,
        job: JobRecord,
        files: FileStore,
        get_config: Callable[[], EmulatorConfig],
        created_monotonic: float,
        flaky: FlakyRequests,
    ) -> None:
        self.job = job
        self._files = files
        self._config = get_config
        self._flaky = flaky
        self._created = created_monotonic
        out_id, out_path = files.new_path()
        err_id, err_path = files.new_path()
        self._output = _ResultFile(out_id, out_path)
        self._error = _ResultFile(err_id, err_path)
        job.result_paths = [out_path, err_path]

    async def run(self) -> None:
        """The job's whole life; never raises except on task cancellation."""
        try:
            with ExitStack() as stack:
                await self._run(stack)
        except asyncio.CancelledError:
            self._discard_results()
            raise
        except Exception:
            log.exception("emulated batch job %s crashed", self.job.id)
            self._end(BatchJobStatus.FAILED, [BatchError(message="internal emulator error")])
            self._discard_results()
        finally:
            if self.job.inline_path is not None:
                self.job.inline_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ phases

    async def _run(self, stack: ExitStack) -> None:
        stop = await self._wait(self._config().queue_seconds)
        if stop is not None:
            self._stopped_early(stop)
            return
        try:
            sources = [stack.enter_context(_closing(source)) for source in self._open_sources()]
            total = await self._validate(sources)
        except _Unusable as exc:
            self._end(BatchJobStatus.FAILED, [BatchError(message=exc.message, count=exc.count)])
            return
        if total is None:
            stop = self._stop_reason() or "cancel"
            self._stopped_early(stop)
            return
        job = self.job
        job.total_requests = total
        job.started_at = now()
        job.status = BatchJobStatus.RUNNING
        stop = await self._process(self._lines(sources))
        if stop is None:
            self._publish(partial=False)
            self._end(BatchJobStatus.SUCCESS)
        else:
            self._finish_stopped(stop)

    def _open_sources(self) -> list[_Source]:
        job = self.job
        if job.inline_path is not None:
            return [_Source("requests", job.inline_path.open("rb"), inline=True)]
        sources: list[_Source] = []
        try:
            for file_id in job.input_files:
                stored = self._files.get(file_id)
                if stored is None:
                    raise _Unusable(f"input file {file_id} not found")
                # Open now: a file deleted while the job runs stays readable.
                sources.append(_Source(f"file {file_id}", stored.path.open("rb"), inline=False))
        except BaseException:
            for source in sources:
                source.handle.close()
            raise
        return sources

    async def _validate(self, sources: list[_Source]) -> int | None:
        """Count the requests and check that at least one is usable; None if stopped."""
        total = 0
        scanned = 0
        first_error: str | None = None
        usable = False
        for source in sources:
            for number, raw in enumerate(source.handle, start=1):
                scanned += 1
                if scanned % SCAN_SLICE_LINES == 0:
                    await asyncio.sleep(0)
                    if self._stop_reason() is not None:
                        return None
                if not raw.strip():
                    continue
                total += 1
                if usable:
                    continue
                try:
                    parse_line(raw, _where(source, number, total - 1))
                    usable = True
                except LineError as exc:
                    first_error = first_error or exc.message
            source.handle.seek(0)
        if total == 0:
            raise _Unusable("the input holds no request (every line is empty)")
        if total > MAX_REQUESTS_PER_JOB:
            raise _Unusable(
                f"the input holds {total} requests, more than the limit of {MAX_REQUESTS_PER_JOB}"
            )
        if not usable:
            raise _Unusable(
                f"no valid request in the input: all {total} lines are malformed "
                f"(first: {first_error})",
                count=total,
            )
        return total

    async def _process(self, lines: Iterator[tuple[bytes, str]]) -> Stop | None:
        """Answer every request at the configured rate; the stop reason, or None when done."""
        loop = asyncio.get_running_loop()
        job = self.job
        budget = 0.0
        last = loop.time()
        while True:
            stop = self._stop_reason()
            if stop is not None:
                return stop
            config = self._config()
            current = loop.time()
            rate = config.requests_per_second
            budget = min(budget + rate * (current - last), max(rate, float(SLICE_REQUESTS)))
            last = current
            allowed = min(int(budget), SLICE_REQUESTS)
            if allowed <= 0:
                await asyncio.sleep(TICK_SECONDS)
                continue
            writer = ResultWriter(
                JobContext(job.id, job.endpoint, job.model, job.agent_id, job.created_at),
                config,
                self._flaky,
            )
            done = self._answer(writer, lines, allowed)
            budget -= done
            if done < allowed:
                return None
            await asyncio.sleep(0 if allowed == SLICE_REQUESTS else TICK_SECONDS)

    def _answer(self, writer: ResultWriter, lines: Iterator[tuple[bytes, str]], count: int) -> int:
        """Answer up to ``count`` requests; how many there were."""
        job = self.job
        succeeded: list[str] = []
        failed: list[str] = []
        done = 0
        for raw, where in lines:
            ok, text = writer.answer(raw, job.completed_requests + done, where)
            (succeeded if ok else failed).append(text)
            done += 1
            if done >= count:
                break
        if succeeded:
            self._output.write(succeeded)
        if failed:
            self._error.write(failed)
        job.completed_requests += done
        job.succeeded_requests += len(succeeded)
        job.failed_requests += len(failed)
        return done

    def _lines(self, sources: list[_Source]) -> Iterator[tuple[bytes, str]]:
        index = 0
        for source in sources:
            for number, raw in enumerate(source.handle, start=1):
                if raw.strip():
                    yield raw, _where(source, number, index)
                    index += 1

    # ------------------------------------------------------------------ endings

    def _stopped_early(self, stop: Stop) -> None:
        """Stopped before any request ran: nothing to publish."""
        if stop == "timeout":
            self._end(BatchJobStatus.TIMEOUT_EXCEEDED, [self._timeout_error()])
        else:
            self._end(BatchJobStatus.CANCELLED)
        self._discard_results()

    def _finish_stopped(self, stop: Stop) -> None:
        if self._config().partial_output_on_cancel:
            self._publish(partial=True)
        else:
            self._discard_results()
        if stop == "timeout":
            self._end(BatchJobStatus.TIMEOUT_EXCEEDED, [self._timeout_error()])
        else:
            self._end(BatchJobStatus.CANCELLED)

    def _timeout_error(self) -> BatchError:
        job = self.job
        left = max(0, job.total_requests - job.completed_requests)
        return BatchError(
            message=f"job exceeded its timeout of {job.timeout_hours} hour(s); "
            f"{left} request(s) were not processed"
        )

    def _publish(self, partial: bool) -> None:
        """Register the output file (and the error file when a request failed)."""
        job = self.job
        if not partial or self._output.lines:
            stored = self._output.stored(f"batch-{job.id}-output.jsonl", SampleType.BATCH_RESULT)
            job.output_file = self._files.add(stored).id
        else:
            self._output.close()
            self._output.path.unlink(missing_ok=True)
        if self._error.lines:
            stored = self._error.stored(f"batch-{job.id}-error.jsonl", SampleType.BATCH_ERROR)
            job.error_file = self._files.add(stored).id
        else:
            self._error.close()
            self._error.path.unlink(missing_ok=True)

    def _discard_results(self) -> None:
        for result in (self._output, self._error):
            result.close()
            if self._files.get(result.file_id) is None:
                result.path.unlink(missing_ok=True)

    def _end(self, status: BatchJobStatus, errors: list[BatchError] | None = None) -> None:
        self.job.status = status
        self.job.errors = errors or []
        self.job.completed_at = now()

    # ------------------------------------------------------------------ clock

    def _deadline(self) -> float:
        return self._created + self.job.timeout_hours * self._config().seconds_per_timeout_hour

    def _stop_reason(self) -> Stop | None:
        if self.job.cancel_requested.is_set():
            return "cancel"
        if asyncio.get_running_loop().time() >= self._deadline():
            return "timeout"
        return None

    async def _wait(self, seconds: float) -> Stop | None:
        """Sleep up to ``seconds``, waking early on cancel or timeout; the stop reason."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (stop := self._stop_reason()) is None:
            left = min(end, self._deadline()) - loop.time()
            if left <= 0:
                return self._stop_reason()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.job.cancel_requested.wait(), timeout=min(left, 1.0))
        return stop


def _where(source: _Source, number: int, index: int) -> str:
    if source.inline:
        return f"requests[{index}]"
    return f"line {number} of {source.label}"


class _closing:
    """Context manager closing a source's handle."""

    def __init__(self, source: _Source) -> None:
        self._source = source

    def __enter__(self) -> _Source:
        return self._source

    def __exit__(self, *exc: object) -> None:
        self._source.handle.close()


__all__ = ["JobRunner"]
