"""A hostile "Mistral" for tests: a real HTTP server on loopback that echoes the API key back.

Some servers, proxies and gateways answer a refused request by quoting its ``Authorization``
header, and an upstream may put anything into a job's free text or files. This server answers
the four routes the UI plugin calls, each in a chosen *shape*:

- ``"clean"``: a normal answer, no key in it (the default).
- ``"echoing"``: a normal answer whose free text quotes the request's ``Authorization`` header:
  a job's ``errors`` and ``metadata`` (one listed job's run id too), and the lines of its error
  and output files.
- an error shape (:data:`ERROR_SHAPES`), each quoting the header the way real servers do:
  ``message`` (400 ``{"message": "invalid token Bearer <key>"}``), ``detail`` (401
  ``{"detail": ...}``), ``text`` (401 plain text), ``bare`` (403, the key without
  ``Bearer``), ``validation`` (422, FastAPI's ``detail`` list with the header as ``input``),
  ``not_found`` (404) and ``gateway`` (502, an HTML page listing the request's headers).

Routes (:data:`ROUTES`): ``list`` is ``GET /v1/batch/jobs``, ``job`` is
``GET /v1/batch/jobs/{id}``, ``cancel`` is ``POST /v1/batch/jobs/{id}/cancel`` and ``content``
is ``GET /v1/files/{id}/content``. Any job id is answered (a job is made up from the id), so a
test picks fresh ids and no cache of the code under test can answer for the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, NamedTuple

#: The fake API key of the hostile connection; no page or answer may carry it.
KEY: Final = "sk-test-SECRET-1234567890"
#: The connection the tests point at the server (also named in tests/integration/plugins/dag_files).
CONN_ID: Final = "mistral_hostile"
ROUTES: Final = ("list", "job", "cancel", "content")
SUCCESS_SHAPES: Final = ("clean", "echoing")
ERROR_SHAPES: Final = (
    "message",
    "detail",
    "text",
    "bare",
    "validation",
    "not_found",
    "gateway",
)
SHAPES: Final = (*SUCCESS_SHAPES, *ERROR_SHAPES)
#: A piece of the key this long is a leak too (a message cut in the middle of the key).
_PIECE: Final = 12


class Answer(NamedTuple):
    """One HTTP answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = {}


def _json(status: int, payload: Any) -> Answer:
    return Answer(status, json.dumps(payload).encode())


def _gateway_page(auth: str, request_line: str) -> Answer:
    page = (
        "<html><body><h1>502 Bad Gateway</h1><p>upstream closed the connection</p>"
        f"<pre>{request_line}\nHost: api.mistral.ai\nAuthorization: {auth}</pre></body></html>"
    )
    # Retry-After 0: a client retries at once (the tests need no waiting).
    return Answer(502, page.encode(), "text/html", {"Retry-After": "0"})


#: Error shape -> its answer, from the request's Authorization header, its bare token and
#: its request line.
_ERRORS: Final[dict[str, Callable[[str, str, str], Answer]]] = {
    "message": lambda auth, token, line: _json(
        400, {"object": "error", "message": f"invalid token {auth}", "type": "invalid_request"}
    ),
    "detail": lambda auth, token, line: _json(401, {"detail": f"Unauthorized: {auth}"}),
    "text": lambda auth, token, line: Answer(
        401, f"401 Unauthorized\nAuthorization: {auth}\n".encode(), "text/plain"
    ),
    "bare": lambda auth, token, line: _json(
        403, {"message": f"API key {token} may not use this endpoint"}
    ),
    "validation": lambda auth, token, line: _json(
        422,
        {
            "detail": [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ["header", "authorization"],
                    "msg": "String should match pattern '^Bearer [a-f0-9]{32}$'",
                    "input": auth,
                }
            ]
        },
    ),
    "not_found": lambda auth, token, line: _json(404, {"message": f"{line} not found for {auth}"}),
    "gateway": lambda auth, token, line: _gateway_page(auth, line),
}


def find_key(data: str | bytes, key: str = KEY) -> str | None:
    """The text around the first piece of ``key`` (whole, or 12 characters of it) in
    ``data``, or None when there is none."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    pieces = [key, *(key[start : start + _PIECE] for start in range(len(key) - _PIECE + 1))]
    for piece in pieces:
        at = text.find(piece)
        if at >= 0:
            return text[max(0, at - 80) : at + len(piece) + 40]
    return None


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    method: str
    path: str
    authorization: str


@dataclass
class HostileServer:
    """The running server; tests set what it answers.

    :param base_url: ``http://127.0.0.1:<port>``.
    :param shapes: route -> shape (see the module docstring); a missing route answers clean.
    :param job_status: the status of every job it reads out.
    :param metadata: the metadata of every job read by id (the task that made it).
    :param seen: every request received, in order.
    """

    base_url: str
    shapes: dict[str, str] = field(default_factory=dict)
    job_status: str = "SUCCESS"
    metadata: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, shapes: Mapping[str, str]) -> None:
        """Answer each route of ``shapes`` in its shape (the others as before)."""
        unknown = [f"{r}={s}" for r, s in shapes.items() if r not in ROUTES or s not in SHAPES]
        if unknown:
            raise ValueError(f"unknown route or shape: {', '.join(unknown)}")
        self.shapes.update(shapes)

    def reset(self) -> None:
        """Clean answers, SUCCESS jobs, no metadata, no request seen."""
        self.shapes.clear()
        self.job_status = "SUCCESS"
        self.metadata = {}
        self.seen.clear()

    def connection(self, key: str = KEY) -> dict[str, Any]:
        """An Airflow connection (JSON form) of type ``mistral`` pointed at this server."""
        return {"conn_type": "mistral", "host": self.base_url, "password": key}

    # ------------------------------------------------------------------ answers

    def respond(self, method: str, path: str, auth: str) -> Answer:
        """The answer to one request."""
        self.seen.append(Seen(method, path, auth))
        route, object_id = _route(method, path)
        if route is None:
            return _json(404, {"message": f"no route {method} {path}"})
        shape = self.shapes.get(route, "clean")
        if shape in _ERRORS:
            token = auth.removeprefix("Bearer").strip()
            return _ERRORS[shape](auth, token, f"{method} {path}")
        echo = auth if shape == "echoing" else None
        if route == "list":
            return _json(200, {"object": "list", "data": self._listed(echo), "total": 3})
        if route == "content":
            return Answer(200, _file_lines(object_id, echo), "application/octet-stream")
        status = "CANCELLATION_REQUESTED" if route == "cancel" else self.job_status
        return _json(200, _job(object_id, status, self.metadata, echo))

    def _listed(self, echo: str | None) -> list[dict[str, Any]]:
        """The jobs page's jobs: the task's, one whose run id quotes the header (when
        echoing), one made outside Airflow; all running."""
        task_job = _job("listed-task-job", "RUNNING", self.metadata, echo)
        dag_id = self.metadata.get("airflow_dag_id", "hostile_dag")
        run_id = f"manual {echo}" if echo else "manual"
        made_by = {"airflow_dag_id": dag_id, "airflow_run_id": run_id, "airflow_task_id": "t"}
        return [
            task_job,
            _job("listed-made-by-job", "RUNNING", made_by, echo),
            _job("listed-outside-job", "RUNNING", {}, echo),
        ]


_JOB_PATH: Final = re.compile(r"^/v1/batch/jobs/([^/]+)(/cancel)?$")
_CONTENT_PATH: Final = re.compile(r"^/v1/files/([^/]+)/content$")


def _route(method: str, path: str) -> tuple[str | None, str]:
    """(route, job or file id) of a request; route None for any other request."""
    if method == "GET" and path == "/v1/batch/jobs":
        return "list", ""
    job = _JOB_PATH.match(path)
    if job and (method, bool(job.group(2))) in (("GET", False), ("POST", True)):
        return ("cancel" if job.group(2) else "job"), job.group(1)
    content = _CONTENT_PATH.match(path)
    if method == "GET" and content:
        return "content", content.group(1)
    return None, ""


def _job(job_id: str, status: str, metadata: Mapping[str, str], echo: str | None) -> dict[str, Any]:
    """A batch job of three requests (one failed), with its files; quoting ``echo`` in its
    errors and metadata when given."""
    now = int(time.time())
    ended = status in ("SUCCESS", "FAILED", "CANCELLED", "TIMEOUT_EXCEEDED")
    return {
        "id": job_id,
        "object": "batch",
        "input_files": [f"{job_id}-input"],
        "metadata": {**metadata, "note": f"sent with {echo}"} if echo else dict(metadata),
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "output_file": f"{job_id}-output",
        "error_file": f"{job_id}-errors",
        "errors": [{"message": f"upstream refused {echo}", "count": 2}] if echo else [],
        "status": status,
        "created_at": now - 60,
        "total_requests": 3,
        "completed_requests": 3 if ended else 1,
        "succeeded_requests": 2 if ended else 1,
        "failed_requests": 1 if ended else 0,
        "started_at": now - 50,
        "completed_at": now - 5 if ended else None,
    }


def _file_lines(file_id: str, echo: str | None) -> bytes:
    """A job's error file (``...-errors``) or output file, quoting ``echo`` when given."""
    said = f" (request had {echo})" if echo else ""
    if file_id.endswith("-errors"):
        lines = [
            {"custom_id": "r1", "error": {"message": f"invalid token{said}", "code": 401}},
            {"custom_id": "r2", "error": f"refused{said}"},
        ]
        text = "\n".join(json.dumps(line) for line in lines) + "\n"
        return (text + (f"Authorization: {echo}\n" if echo else "")).encode()
    body = {"choices": [{"message": {"role": "assistant", "content": f"hello{said}"}}]}
    line = {"custom_id": "r0", "response": {"status_code": 200, "body": body}}
    return (json.dumps(line) + "\n").encode()


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            answer = server.respond(self.command, path, self.headers.get("Authorization", ""))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read :attr:`HostileServer.seen` instead."""

    return Handler


@contextmanager
def run_hostile_server() -> Iterator[HostileServer]:
    """Serve a :class:`HostileServer` on a free loopback port in a thread, until exit."""
    state = HostileServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="hostile-mistral", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


__all__ = [
    "CONN_ID",
    "ERROR_SHAPES",
    "KEY",
    "ROUTES",
    "SHAPES",
    "SUCCESS_SHAPES",
    "HostileServer",
    "Seen",
    "find_key",
    "run_hostile_server",
]
