"""Everything one emulator instance holds: config, files, jobs, faults and the request log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mistral_batch_emulator.config import EmulatorConfig
from mistral_batch_emulator.faults import FaultInjector
from mistral_batch_emulator.files import FileStore
from mistral_batch_emulator.flaky import FlakyRequests
from mistral_batch_emulator.jobs import JobRecord, JobStore
from mistral_batch_emulator.runner import JobRunner

log = logging.getLogger(__name__)

#: The request log keeps this many most recent requests.
REQUEST_LOG_SIZE = 100_000
#: How long deleting a running job waits for its cancellation before killing the task.
_STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the emulator saw.

    :param status_code: the status answered, or None when the connection was dropped.
    :param fault: the kind of fault injected into this request, if any.
    """

    method: str
    path: str
    query: str
    status_code: int | None
    fault: str | None = None
    received_at: float = 0.0


class EmulatorState:
    """The state of one emulator; mutated only on its event loop, except where noted."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.initial_config = config
        self._config = config
        self.faults = FaultInjector(config.faults, config.seed)
        self.flaky = FlakyRequests()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(
                prefix="mistral-batch-emulator-", ignore_cleanup_errors=True
            )
            root = Path(self._tmp.name)
        else:
            root = Path(config.data_dir)
        self.data_dir = root / "mistral-batch-emulator"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.files = FileStore(self.data_dir)
        self.jobs = JobStore()
        self.signing_key = secrets.token_bytes(32)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._log_lock = threading.Lock()
        self._log: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)

    # ------------------------------------------------------------------ config (any thread)

    @property
    def config(self) -> EmulatorConfig:
        """The current config (replaced as a whole on update, so reads are consistent)."""
        return self._config

    def update_config(self, **changes: Any) -> EmulatorConfig:
        """Change settings while running; ``faults`` replaces the scripted sequence and
        ``flaky_custom_ids`` restarts the flaky requests' failure counts."""
        unknown = set(changes) - set(EmulatorConfig.model_fields)
        if unknown:
            raise TypeError(f"unknown emulator settings: {', '.join(sorted(unknown))}")
        if "data_dir" in changes:
            raise ValueError("data_dir cannot change while the emulator runs")
        new = EmulatorConfig.model_validate({**self._config.model_dump(), **changes})
        self._config = new
        if "faults" in changes:
            self.faults.set_faults(new.faults)
        if "seed" in changes:
            self.faults.reseed(new.seed)
        if "flaky_custom_ids" in changes:
            self.flaky.reset()
        return new

    # ------------------------------------------------------------------ request log (any thread)

    def record(self, request: RecordedRequest) -> None:
        """Append to the request log."""
        with self._log_lock:
            self._log.append(request)

    def recorded(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._log_lock:
            self._log.clear()

    # ------------------------------------------------------------------ jobs (event loop)

    def start_job(self, job: JobRecord) -> None:
        """Register a job and start its background runner on the running loop."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        runner = JobRunner(job, self.files, lambda: self._config, loop.time(), self.flaky)
        self.jobs.add(job)
        job.task = loop.create_task(runner.run(), name=f"batch-job-{job.id}")

    async def stop_job(self, job: JobRecord) -> None:
        """Request cancellation and wait for the runner to end (killing it if it lingers)."""
        job.cancel_requested.set()
        task = job.task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=_STOP_GRACE_SECONDS)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def areset(self) -> None:
        """Forget every job and file, the scripted faults, the flaky requests' failure counts
        and the request log."""
        tasks = [job.task for job in self.jobs.all() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.jobs.clear()
        self.files.clear()
        self._config = self.initial_config
        self.faults.set_faults([])
        self.faults.reseed(self.initial_config.seed)
        self.flaky.reset()
        self.clear_requests()

    async def aclose(self) -> None:
        """Stop every job and remove a temporary data directory."""
        tasks = [job.task for job in self.jobs.all() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ signed urls

    def sign(self, file_id: str, expires: int) -> str:
        """The signature of a download URL for ``file_id`` valid until ``expires``."""
        message = f"{file_id}:{expires}".encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()[:32]

    def check_signature(self, file_id: str, expires: int, signature: str) -> bool:
        """Whether a download URL is genuine and not expired."""
        if expires < time.time():
            return False
        return hmac.compare_digest(self.sign(file_id, expires), signature)


__all__ = ["REQUEST_LOG_SIZE", "EmulatorState", "RecordedRequest"]
