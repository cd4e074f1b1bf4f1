"""The Airflow UI plugin: a "Mistral batch" tab on task instances and a batch jobs page.

Registered through the provider info (``plugins``). Every Airflow process that loads plugins
imports this module, task runners included (for macros), so it stays light: the FastAPI app
(``plugins/app.py``) is built the first time the api-server reads it, never in a worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Where the api-server mounts the plugin's app (below Airflow's base URL).
URL_PREFIX: Final = "/mistral-batch"
#: The UI's route name of the task instance tab (``.../tasks/<task>/plugin/mistral-batch``).
TAB_URL_ROUTE: Final = "mistral-batch"
#: The UI's route name of the jobs page (``/plugin/mistral-batch-jobs``).
PAGE_URL_ROUTE: Final = "mistral-batch-jobs"


def _icon() -> str:
    """The views' icon, ``static/icon.svg`` (stacked layers), as a data URI: a data URI needs
    no route (and every route of the plugin needs a login)."""
    svg = (Path(__file__).parent / "static" / "icon.svg").read_text(encoding="utf-8")
    compact = "".join(line.strip() for line in svg.splitlines())
    return "data:image/svg+xml;utf8," + quote(compact, safe="/:=' ")


_ICON: Final = _icon()


class _LazyApp(Mapping[str, Any]):
    """The ``fastapi_apps`` entry: its ``app`` is built on first read (by the api-server)."""

    _KEYS: Final = ("app", "url_prefix", "name")

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "app":
            if self._app is None:
                from airflow_provider_mistral_batch.plugins.app import create_app

                self._app = create_app()
            return self._app
        if key == "url_prefix":
            return URL_PREFIX
        if key == "name":
            return "Mistral batch"
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)


def _connection_test_port(app: Any) -> Any:
    """The root middleware of ``plugins/connection_test.py``, imported only when the
    api-server builds its app (Starlette calls this with the app it wraps)."""
    from airflow_provider_mistral_batch.plugins.connection_test import MistralConnectionTestPort

    return MistralConnectionTestPort(app)


class MistralBatchPlugin(AirflowPlugin):
    """The Mistral batch views of the Airflow UI (Airflow 3.1+), served by the api-server.

    Hrefs are relative: the UI resolves them against its ``<base href>``, so they work under
    a base URL prefix. The UI shows both in an iframe.
    """

    name = "mistral_batch"
    fastapi_apps = [_LazyApp()]
    # The connection list's Test button sends port 0 for a connection without a port.
    fastapi_root_middlewares = [
        {"name": "mistral_connection_test_port", "middleware": _connection_test_port}
    ]
    external_views = [
        {
            "name": "Mistral batch",
            # The UI fills the placeholders; {MAP_INDEX} stays as is on an unmapped task.
            "href": URL_PREFIX.lstrip("/") + "/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}",
            "destination": "task_instance",
            "url_route": TAB_URL_ROUTE,
            "icon": _ICON,
        },
        {
            "name": "Mistral batch jobs",
            "href": URL_PREFIX.lstrip("/") + "/jobs",
            "destination": "nav",
            # In the Browse menu, whose items show their whole name (a top-level nav
            # button cuts it to "Mistral ba...").
            "category": "browse",
            "url_route": PAGE_URL_ROUTE,
            "icon": _ICON,
        },
    ]


__all__ = ["PAGE_URL_ROUTE", "TAB_URL_ROUTE", "URL_PREFIX", "MistralBatchPlugin"]
