"""A real Airflow deployment for tests and benches: api-server, scheduler, dag-processor and
triggerer (or the api-server with some of the others).

Each component is a separate ``airflow <component>`` process of this virtualenv, started in its
own process group with the environment of a private ``AIRFLOW_HOME``: a SQLite DB migrated with
``airflow db migrate``, the LocalExecutor, a simple auth manager with an admin and a viewer of
known passwords and free loopback ports for the api-server and both log servers. Tests drive
it as an operator of Airflow would: through the REST API (:class:`AirflowApi`) and process
signals (:meth:`Deployment.kill`). Process output goes to log files under the home, whose
tails end up in every startup or wait failure.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx2
import psutil

from mistral_batch_emulator import EmulatorConfig, RunningEmulator, run_emulator
from mistral_batch_emulator.dagtest import DEFAULT_CONN_ID

T = TypeVar("T")

AIRFLOW_BIN: Final = Path(sys.executable).with_name("airflow")
COMPONENTS: Final = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER: Final = "admin"
ADMIN_PASSWORD: Final = "deployment-test-admin"
#: A read-only user (the simple auth manager's "viewer" role), for what a Viewer may see.
VIEWER_USER: Final = "viewer"
VIEWER_PASSWORD: Final = "deployment-test-viewer"

#: Every process a deployment starts, and all their descendants, carry this variable (with the
#: deployment's own id): teardown finds any of them that left their parent's process tree.
MARKER_ENV: Final = "MISTRAL_DEPLOYMENT_TEST_ID"

#: The path of a lock file: while one deployment runs, another that names the same file waits
#: for it to end (scripts/test.sh runs two Airflow versions' tests at once, each with its own).
LOCK_ENV: Final = "MISTRAL_DEPLOYMENT_LOCK"

#: Generous: two busy cores start four Airflow processes at once.
START_TIMEOUT: Final = 180.0
POLL_SECONDS: Final = 0.5
TERMINAL_RUN_STATES: Final = frozenset({"success", "failed"})


class DeploymentError(RuntimeError):
    """The deployment failed to start, a component died, or a wait ran out."""


class ApiError(DeploymentError):
    """The REST API answered with an error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def _ephemeral_ports() -> range:
    """The range the kernel picks ports from for ``bind(0)`` and outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def _bindable(port: int) -> bool:
    # The log servers listen on every address (IPv6 and IPv4), the api-server on loopback.
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):  # noqa: S104
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((host, port))
        except OSError as exc:
            if family == socket.AF_INET6 and not socket.has_ipv6:
                continue
            if exc.errno == errno.EADDRNOTAVAIL:  # no IPv6 on this machine
                continue
            return False
    return True


def free_port(exclude: Iterable[int] = ()) -> int:
    """A TCP port free on every address, below the kernel's ephemeral range.

    A component binds its port seconds after it is chosen (Airflow takes that long to
    import); a port the kernel never hands out by itself cannot be taken meanwhile by another
    process's ``bind(0)`` or outgoing connection.
    """
    ephemeral = _ephemeral_ports()
    low = 10_000 if ephemeral.start > 12_000 else ephemeral.stop
    high = ephemeral.start - 1 if ephemeral.start > 12_000 else 65_535
    taken = set(exclude)
    for _ in range(200):
        port = secrets.choice(range(low, high + 1))
        if port not in taken and _bindable(port):
            return port
    raise DeploymentError(f"no free port found between {low} and {high}")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    details: Callable[[], str] | None = None,
    interval: float = POLL_SECONDS,
) -> T:
    """Call ``probe`` every ``interval`` s until it returns something truthy; return that.

    :raises DeploymentError: after ``timeout`` s, naming ``what`` and adding ``details()``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = details() if details is not None else ""
            raise DeploymentError(f"waited {timeout:.0f} s for {what}\n{extra}".rstrip())
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Component:
    """One ``airflow <name>`` process in its own process group, output to ``log_path``."""

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the process (appending to its log file)."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} of airflow {self.name} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 (the venv's own airflow command)
                [str(AIRFLOW_BIN), self.name],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The process and all its descendants (the serve-logs child, task and trigger runners)."""
        if not self.alive():
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the process, its process group and every descendant found just before."""
        if self.process is None:
            return
        doomed = self.tree()
        if doomed:
            # Only while the leader lives: a reaped leader's number could name another group
            # by now (the deployment's final sweep finds any member left behind).
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        _kill_all(doomed)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of this component's output."""
        return tail(self.log_path, lines)


def _kill_all(processes: Iterable[psutil.Process]) -> None:
    doomed = list(processes)
    for process in doomed:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.kill()
    psutil.wait_procs(doomed, timeout=10)


def _marked_processes(marker: str) -> list[psutil.Process]:
    """Processes of this user whose environment carries ``MARKER_ENV=marker``."""
    found = []
    uid = os.getuid()
    for process in psutil.process_iter():
        try:
            if process.pid == os.getpid() or process.uids().real != uid:
                continue
            if process.environ().get(MARKER_ENV) == marker:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


class Deployment:
    """Airflow components of one private home; :meth:`stop` ends all they started.

    :param components: which of :data:`COMPONENTS` to run; all four by default. The
        api-server alone serves the UI, its plugins, the REST and Execution APIs.
    """

    def __init__(
        self,
        home: Path,
        extra_env: Mapping[str, str] | None = None,
        components: Iterable[str] = COMPONENTS,
    ) -> None:
        names = list(components)
        if "api-server" not in names or not set(names) <= set(COMPONENTS):
            # The api-server is how the others are checked and driven.
            raise ValueError(
                f"components: the api-server and any of {', '.join(COMPONENTS[1:])}, not {names}"
            )
        self.home = home
        self.dags_folder = home / "dags"
        self.logs_folder = home / "component-logs"
        self.marker = uuid.uuid4().hex
        self.api_port = free_port()
        self.worker_log_port = free_port(exclude=[self.api_port])
        self.trigger_log_port = free_port(exclude=[self.api_port, self.worker_log_port])
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.env = self._environment(extra_env or {})
        self.components: dict[str, Component] = {
            name: Component(name, self.env, self.logs_folder / f"{name}.log")
            for name in COMPONENTS
            if name in names
        }

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        # Nothing Airflow-related from the test session (its own home, connections) leaks in.
        base = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW", "MISTRAL_EXAMPLE_"))
        }
        home = self.home
        return {
            **base,
            MARKER_ENV: self.marker,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # SQLite takes one writer at a time: few task processes at once.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{VIEWER_USER}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"{self.base_url}/",
            # Shared by every component (task tokens, log server requests); never a real secret.
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            # The DAG files do not change during a test: parse them once.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # A restarted triggerer adopts a killed one's triggers after this many seconds.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            **extra,
        }

    # ------------------------------------------------------------------ lifecycle

    def prepare(self, *dag_folders: Path) -> None:
        """Create the home: DAGs, the users' passwords, a migrated DB."""
        from mistral_batch_emulator.dagtest import stage_dags

        self.logs_folder.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        stage_dags(*dag_folders, into=self.dags_folder)
        passwords = {ADMIN_USER: ADMIN_PASSWORD, VIEWER_USER: VIEWER_PASSWORD}
        (self.home / "passwords.json").write_text(json.dumps(passwords))
        log_path = self.logs_folder / "db-migrate.log"
        with log_path.open("wb") as log:
            done = subprocess.run(  # noqa: S603 (the venv's own airflow command)
                [str(AIRFLOW_BIN), "db", "migrate"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )
        if done.returncode != 0:
            raise DeploymentError(
                f"airflow db migrate failed (exit {done.returncode}):\n{tail(log_path)}"
            )

    def start(self) -> None:
        """Start every component at once and wait until the api-server reports them healthy."""
        for component in self.components.values():
            component.start()
        self.wait_healthy(self.components)

    def wait_healthy(self, names: Iterable[str], timeout: float = START_TIMEOUT) -> None:
        """Wait until the api-server answers and reports ``names`` healthy (fail fast on exit)."""
        wanted = {_HEALTH_KEYS[name] for name in names if name in _HEALTH_KEYS}
        last: list[str] = ["no answer yet"]

        def healthy() -> bool:
            self.check_alive()
            try:
                response = httpx2.get(f"{self.base_url}/api/v2/monitor/health", timeout=10)
            except httpx2.HTTPError as exc:
                last[0] = f"{type(exc).__name__}: {exc}"
                return False
            if response.status_code != 200:
                last[0] = f"HTTP {response.status_code}: {response.text[:500]}"
                return False
            health = response.json()
            last[0] = json.dumps(health)
            return all((health.get(key) or {}).get("status") == "healthy" for key in wanted)

        wait_for(
            healthy,
            timeout=timeout,
            what=f"Airflow to report {', '.join(sorted(wanted))} healthy",
            details=lambda: f"last health answer: {last[0]}\n{self.log_tails()}",
        )

    def check_alive(self) -> None:
        """Raise, with its output, if a component that was started has exited."""
        for component in self.components.values():
            if component.process is not None and not component.alive():
                raise DeploymentError(
                    f"airflow {component.name} exited with status {component.process.returncode}:"
                    f"\n{component.log_tail(60)}"
                )

    def kill(self, name: str) -> None:
        """SIGKILL one component and everything it started (its serve-logs child included)."""
        self.components[name].kill()

    def restart(self, name: str) -> None:
        """Start a killed component again (the caller waits for what it needs of it)."""
        component = self.components[name]
        if component.alive():
            raise DeploymentError(f"airflow {name} is still running")
        component.start()

    def stop(self) -> None:
        """Kill every component, every descendant and any marked process left behind.

        :raises DeploymentError: if a process of this deployment survived that.
        """
        for component in self.components.values():
            component.kill()
        _kill_all(_marked_processes(self.marker))
        survivors = _marked_processes(self.marker)
        if survivors:
            raise DeploymentError(f"processes of the deployment survived: {survivors}")

    def log_tails(self, lines: int = 25) -> str:
        """The last lines of every component's output, for failure messages."""
        return "\n".join(
            f"--- airflow {component.name} (pid {component.pid if component.process else '-'},"
            f" {'running' if component.alive() else 'not running'}) ---\n"
            f"{component.log_tail(lines)}"
            for component in self.components.values()
        )


_HEALTH_KEYS: Final = {
    "api-server": "metadatabase",
    "scheduler": "scheduler",
    "dag-processor": "dag_processor",
    "triggerer": "triggerer",
}


# ---------------------------------------------------------------------- REST client


class AirflowApi:
    """The public REST API (``/api/v2``) with a token of the admin user."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        response = httpx2.post(
            f"{base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        if response.status_code not in (200, 201):
            raise DeploymentError(
                f"POST /auth/token: HTTP {response.status_code}: {response.text[:500]}"
            )
        self.token: str = response.json()["access_token"]
        self.http = httpx2.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; JSON back. Transport errors of reads are retried (the server is busy)."""
        attempts = 3 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = self.http.request(method, path, **kwargs)
                break
            except httpx2.TransportError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)
        if response.status_code >= 400:
            raise ApiError(
                f"{method} /api/v2{path}: HTTP {response.status_code}: {response.text[:1000]}",
                response.status_code,
            )
        return response.json() if response.content else None

    # ------------------------------------------------------------------ DAGs and runs

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG, or None while the dag-processor has not stored it."""
        try:
            result: dict[str, Any] = self.request("GET", f"/dags/{quote(dag_id)}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return result

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to parse."""
        errors: list[dict[str, Any]] = self.request("GET", "/importErrors")["import_errors"]
        return errors

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = START_TIMEOUT) -> None:
        """Wait until the dag-processor has stored every DAG; fail at once on import errors."""
        missing = list(dag_ids)

        def all_there() -> bool:
            errors = self.import_errors()
            if errors:
                raise DeploymentError(f"DAG import errors: {json.dumps(errors, indent=1)}")
            missing[:] = [dag_id for dag_id in missing if self.dag(dag_id) is None]
            return not missing

        wait_for(
            all_there,
            timeout=timeout,
            what="the dag-processor to store the DAGs",
            details=lambda: f"missing: {', '.join(missing)}",
        )

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    def trigger(
        self, dag_id: str, run_id: str | None = None, conf: dict[str, Any] | None = None
    ) -> str:
        """Start a run now (with ``conf``, the run's params); its run id."""
        body: dict[str, Any] = {"logical_date": None}
        if run_id is not None:
            body["dag_run_id"] = run_id
        if conf is not None:
            body["conf"] = conf
        run = self.request("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.request("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}")
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones one by one)."""
        answer = self.request(
            "GET",
            f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances",
            params={"limit": 100},
        )
        instances: list[dict[str, Any]] = answer["task_instances"]
        return instances

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, Any]:
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        instance: dict[str, Any] = self.request("GET", path)
        return instance

    def find_task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, Any] | None:
        """The task instance, or None while the scheduler has not made it (mapped tasks)."""
        try:
            return self.task_instance(dag_id, run_id, task_id, map_index)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
        """``(task_id, map_index) -> state`` of a run."""
        return {
            (ti["task_id"], ti["map_index"]): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Mark a task instance, as a user does in the UI (``PATCH ... new_state``)."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
        self.request("PATCH", path, json={"new_state": state})

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
    ) -> Any:
        """One XCom value as the task pushed it (JSON), or None when there is none."""
        try:
            entry = self.request(
                "GET",
                f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
                f"/xcomEntries/{quote(key)}",
                params={"map_index": map_index},
            )
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        value = entry["value"]
        if isinstance(value, str):
            # Some releases hand back the stored JSON text rather than the value.
            with suppress(ValueError):
                return json.loads(value)
        return value

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int | None = None,
        map_index: int = -1,
    ) -> str:
        """A task instance's log as text, the trigger's lines included (latest try by default)."""
        if try_number is None:
            try_number = int(self.task_instance(dag_id, run_id, task_id, map_index)["try_number"])
        answer = self.request(
            "GET",
            f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
            f"/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return "\n".join(_log_line(entry) for entry in answer.get("content") or [])

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, details: Callable[[], str] | None = None
    ) -> dict[str, Any]:
        """Wait until a run has ended (success or failed); the run."""

        def ended() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_for(
            ended,
            timeout=timeout,
            what=f"run {run_id} of {dag_id} to end",
            details=lambda: self.describe_run(dag_id, run_id) + (details() if details else ""),
        )

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str],
        timeout: float,
        map_index: int = -1,
        details: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        """Wait until a task instance is in one of ``states``; the task instance."""
        wanted = set(states)

        def reached() -> dict[str, Any] | None:
            instance = self.task_instance(dag_id, run_id, task_id, map_index)
            return instance if instance["state"] in wanted else None

        return wait_for(
            reached,
            timeout=timeout,
            what=f"{dag_id}.{task_id} of {run_id} to be {' or '.join(sorted(wanted))}",
            details=lambda: self.describe_run(dag_id, run_id) + (details() if details else ""),
        )

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """Task states of a run and the logs of its failed tasks, for failure messages."""
        try:
            lines = [f"task states of {dag_id} / {run_id}:"]
            for ti in self.task_instances(dag_id, run_id):
                lines.append(
                    f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} (try {ti['try_number']})"
                )
                if ti["state"] in ("failed", "up_for_retry", "upstream_failed"):
                    with suppress(DeploymentError, httpx2.HTTPError):
                        log = self.task_log(
                            dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"]
                        )
                        lines.append("\n".join(log.splitlines()[-30:]))
            return "\n".join(lines) + "\n"
        except (DeploymentError, httpx2.HTTPError) as exc:
            return f"(could not describe the run: {exc})\n"


def _log_line(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        event = str(entry.get("event", ""))
        level = entry.get("level")
        return f"[{level}] {event}" if level else event
    return str(entry)


# ---------------------------------------------------------------------- the whole thing

#: The emulator's pace while a test holds every job RUNNING (about one request in 100 s).
HELD_REQUESTS_PER_SECOND: Final = 0.01


@dataclass
class RunningDeployment:
    """What a test gets: the started deployment, a REST client, the emulator, the home."""

    deployment: Deployment
    api: AirflowApi
    emulator: RunningEmulator
    #: The emulator's pace when no test holds its jobs.
    requests_per_second: float

    @property
    def base_url(self) -> str:
        """The api-server's URL (the UI, ``/api/v2``, ``/auth``)."""
        return self.deployment.base_url

    @property
    def home(self) -> Path:
        """The private ``AIRFLOW_HOME``."""
        return self.deployment.home

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int | None = None,
        map_index: int = -1,
    ) -> str:
        """A task instance's log, read through the REST API."""
        return self.api.task_log(dag_id, run_id, task_id, try_number, map_index)

    # ------------------------------------------------------------------ the emulator

    def hold_jobs(self) -> None:
        """Keep every job RUNNING (next to no progress) until :meth:`release_jobs`."""
        self.emulator.update_config(requests_per_second=HELD_REQUESTS_PER_SECOND)

    def release_jobs(self) -> None:
        """Let jobs run at the normal pace again."""
        self.emulator.update_config(requests_per_second=self.requests_per_second)

    def _emulator_get(self, path: str, **params: Any) -> Any:
        response = httpx2.get(
            f"{self.emulator.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.emulator.api_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def mistral_job(self, job_id: str) -> dict[str, Any]:
        """A job as the emulator's API shows it."""
        job: dict[str, Any] = self._emulator_get(f"/v1/batch/jobs/{job_id}")
        return job

    def mistral_jobs(self, **metadata: str) -> list[dict[str, Any]]:
        """The emulator's jobs whose metadata has every given key and value."""
        jobs: list[dict[str, Any]] = self._emulator_get("/v1/batch/jobs", page_size=1000)["data"]
        return [
            job
            for job in jobs
            if all((job.get("metadata") or {}).get(key) == value for key, value in metadata.items())
        ]

    def job_requests(self, job_id: str, method: str = "GET", suffix: str = "") -> list[float]:
        """When (epoch seconds) the emulator got ``method`` on ``/v1/batch/jobs/<id><suffix>``."""
        path = f"/v1/batch/jobs/{job_id}{suffix}"
        return [
            request.received_at
            for request in self.emulator.requests
            if request.method == method and request.path == path
        ]

    # ------------------------------------------------------------------ Airflow

    def triggerer_job_ids(self, *, heartbeating: bool = True) -> set[int]:
        """Ids of the triggerer jobs that are running and (by default) heartbeating.

        :param heartbeating: only those whose last heartbeat is recent. On a loaded machine a
            live triggerer's heartbeat may be late for a moment: a check made once, rather than
            waited for, asks for running jobs only.
        """
        params: dict[str, Any] = {"job_type": "TriggererJob", "limit": 100}
        if heartbeating:
            params["is_alive"] = True
        answer = self.api.request("GET", "/jobs", params=params)
        return {job["id"] for job in answer["jobs"] if job["state"] == "running"}

    def wait_until_deferred(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int = -1,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Wait until a task instance is deferred, its trigger held by a running triggerer and
        the scheduler has seen the task's process end; the task instance.

        The last part keeps a test's timing independent of the provider's guard against
        Airflow's deferral race (a trigger that fires before the scheduler has read the report
        of the deferring process makes Airflow fail the task; see ``utils/deferral.py``): once
        the report is read, a test that lets its job end meets no hold. The fast-jobs test
        skips this wait on purpose, to meet the race.
        """

        def deferred_and_held() -> dict[str, Any] | None:
            instance = self.api.find_task_instance(dag_id, run_id, task_id, map_index)
            if instance is None or instance["state"] != "deferred":
                return None
            held_by = (instance.get("trigger") or {}).get("triggerer_id")
            return instance if held_by in self.triggerer_job_ids() else None

        instance = wait_for(
            deferred_and_held,
            timeout=timeout,
            what=f"{dag_id}.{task_id}[{map_index}] of {run_id} to be deferred, held by a triggerer",
            details=lambda: self.api.describe_run(dag_id, run_id) + self.deployment.log_tails(),
        )
        finished = (
            f"TaskInstance Finished: dag_id={dag_id}, task_id={task_id}, run_id={run_id}, "
            f"map_index={map_index}, "
        )
        scheduler_log = self.deployment.components["scheduler"].log_path

        def scheduler_saw_the_deferral() -> bool:
            text = scheduler_log.read_text(errors="replace")
            return any(
                finished in line and ", state=deferred," in line for line in text.splitlines()
            )

        # Not an assertion: if the scheduler's wording ever changes, the test goes on after the
        # wait (the race above is then merely unlikely, not excluded).
        try:
            wait_for(scheduler_saw_the_deferral, timeout=30, what="the scheduler's report")
        except DeploymentError:
            warnings.warn(
                f"no {finished!r}... state=deferred line in the scheduler's log after 30 s",
                stacklevel=2,
            )
        return instance


@contextmanager
def one_deployment_at_a_time() -> Iterator[None]:
    """Hold the lock named by ``MISTRAL_DEPLOYMENT_LOCK`` (if set) for as long as the block runs.

    Two deployments on two cores at once would starve each other's scheduler and triggerer;
    the lock serialises them across processes (released by the kernel if a process dies).
    """
    path = os.environ.get(LOCK_ENV)
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def running_deployment(
    home: Path,
    dag_folders: Iterable[Path],
    dag_ids: Iterable[str],
    *,
    requests_per_second: float = 20.0,
    extra_env: Mapping[str, str] | None = None,
    components: Iterable[str] = COMPONENTS,
) -> Iterator[RunningDeployment]:
    """An emulator, then Airflow in ``home`` pointed at it with ``dag_ids`` parsed and unpaused.

    Every process started is killed on exit, whatever happened.

    :param requests_per_second: the emulator's pace when no test holds its jobs.
    :param extra_env: more environment variables for every Airflow process.
    :param components: which Airflow components to run (all four by default); without the
        dag-processor, ``dag_ids`` must be empty.
    """
    with (
        one_deployment_at_a_time(),
        run_emulator(EmulatorConfig(requests_per_second=requests_per_second)) as emulator,
    ):
        connection = {
            "conn_type": "mistral",
            "host": emulator.base_url,
            "password": emulator.api_key,
            "extra": {},
        }
        env = {
            f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}": json.dumps(connection),
            **(extra_env or {}),
        }
        deployment = Deployment(home, env, components)
        api: AirflowApi | None = None
        try:
            deployment.prepare(*dag_folders)
            deployment.start()
            api = AirflowApi(deployment.base_url, ADMIN_USER, ADMIN_PASSWORD)
            ids = list(dag_ids)
            api.wait_for_dags(ids)
            for dag_id in ids:
                api.unpause(dag_id)
            yield RunningDeployment(deployment, api, emulator, requests_per_second)
        finally:
            if api is not None:
                api.close()
            deployment.stop()
