"""How Airflow finds the plugin, and what it costs the processes that load it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from urllib.parse import unquote
from xml.etree import ElementTree

from airflow_provider_mistral_batch.get_provider_info import get_provider_info
from airflow_provider_mistral_batch.plugins import URL_PREFIX, MistralBatchPlugin

PLUGIN_CLASS = "airflow_provider_mistral_batch.plugins.MistralBatchPlugin"


def test_the_plugin_is_registered_once_by_entry_point() -> None:
    # The entry point loads it with any configuration. The provider info's list is read only
    # with [core] lazy_discover_providers = False, where a second registration would show as
    # a plugin import error: it stays out of the provider info.
    (point,) = [p for p in entry_points(group="airflow.plugins") if p.name == "mistral_batch"]
    assert point.value == PLUGIN_CLASS.replace(".MistralBatchPlugin", ":MistralBatchPlugin")
    assert point.load() is MistralBatchPlugin
    assert "plugins" not in get_provider_info()


def test_airflow_loads_the_plugin_with_its_app_and_views() -> None:
    from airflow import plugins_manager

    (info,) = [p for p in plugins_manager.get_plugin_info() if p["name"] == "mistral_batch"]
    (app,) = info["fastapi_apps"]
    assert app["url_prefix"] == URL_PREFIX == "/mistral-batch"
    assert app["app"] == "fastapi.applications.FastAPI"
    views = {view["destination"]: view for view in info["external_views"]}
    assert set(views) == {"task_instance", "nav"}
    tab = views["task_instance"]["href"]
    assert tab == "mistral-batch/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"
    assert views["nav"]["href"] == "mistral-batch/jobs"
    # Relative hrefs: the UI resolves them against its <base href> (base URL prefix included).
    assert not any(view["href"].startswith(("/", "http")) for view in views.values())
    routes = [view["url_route"] for view in views.values()]
    assert len(set(routes)) == 2
    assert all(routes)


def test_both_views_show_the_icon_of_static_as_a_data_uri() -> None:
    # A data URI needs no route (every route needs a login); the UI puts it in an <img src>.
    icons = {view["icon"] for view in MistralBatchPlugin.external_views}
    (icon,) = icons
    prefix = "data:image/svg+xml;utf8,"
    assert icon.startswith(prefix)
    svg = unquote(icon.removeprefix(prefix))
    # Escaped: a "#" would end the URI.
    assert "<" not in icon
    assert "#" not in icon
    root = ElementTree.fromstring(svg)  # noqa: S314 (a file of the package)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}path")) == 3


def test_loading_the_plugin_does_not_import_fastapi() -> None:
    # Task runners load plugins (for macros) before every task: they must not pay for the app.
    code = (
        "import sys, airflow.sdk; import airflow_provider_mistral_batch.plugins as p; "
        "assert p.MistralBatchPlugin.external_views; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette') "
        "or m.startswith('airflow_provider_mistral_batch.plugins.')))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
