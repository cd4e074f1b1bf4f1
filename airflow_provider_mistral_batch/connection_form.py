"""The ``mistral`` connection type: its defaults and its form in Airflow's UI.

Airflow reads the form through ``get_provider_info`` in every process that imports Airflow,
while Airflow itself may still be starting: so this module imports nothing, neither Airflow
nor the hook (the hook's settings, read from a connection, are in
:mod:`~airflow_provider_mistral_batch.hooks.connection`).
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_CONN_ID: Final = "mistral_default"
DEFAULT_BASE_URL: Final = "https://api.mistral.ai"
DEFAULT_CONSOLE_URL: Final = "https://console.mistral.ai"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_RETRIES: Final = 4

#: Hidden fields, labels and placeholders of the form (hook / Airflow 3.1 spelling).
UI_FIELD_BEHAVIOUR: Final[dict[str, Any]] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"password": "API Key", "host": "Base URL"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "your Mistral API key",
        "timeout": str(int(DEFAULT_TIMEOUT)),
        "connect_timeout": str(int(DEFAULT_CONNECT_TIMEOUT)),
        "max_retries": str(DEFAULT_MAX_RETRIES),
        "console_url": DEFAULT_CONSOLE_URL,
    },
}

#: Extra fields: name -> (label, JSON schema type, description).
EXTRA_FIELDS: Final[dict[str, tuple[str, str, str]]] = {
    "timeout": ("Timeout (seconds)", "number", "Read/write timeout of one request."),
    "connect_timeout": ("Connect timeout (seconds)", "number", "Timeout to open a connection."),
    "max_retries": (
        "Max retries",
        "integer",
        "Retries of a request that failed with 429, 5xx, a timeout or a connection error.",
    ),
    "console_url": (
        "Console URL",
        "string",
        "Root of the web console for links to batch jobs; default Mistral's console, or the "
        "API's own root when it runs on a loopback address (the emulator).",
    ),
    "reattach_namespace": (
        "Reattach namespace",
        "string",
        "Part of every task's reattach key: give each Airflow deployment that shares a Mistral "
        "workspace and runs the same DAG ids its own, so that a retry never reattaches to "
        "another deployment's job. Changing it makes running tasks' retries create new jobs.",
    ),
}


def provider_ui_field_behaviour() -> dict[str, Any]:
    """The form behaviour in the provider-info spelling (Airflow 3.2+)."""
    return {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }


def provider_conn_fields() -> dict[str, Any]:
    """The extra fields in the provider-info ``conn-fields`` spelling (Airflow 3.2+)."""
    return {
        name: {"label": label, "description": description, "schema": {"type": [kind, "null"]}}
        for name, (label, kind, description) in EXTRA_FIELDS.items()
    }


def wtforms_widgets() -> dict[str, Any]:
    """The extra fields as wtforms fields, for Airflow 3.1; empty when wtforms is absent."""
    try:
        from wtforms import IntegerField, StringField
    except ImportError:
        return {}
    widgets: dict[str, Any] = {}
    for name, (label, kind, description) in EXTRA_FIELDS.items():
        field_class = IntegerField if kind == "integer" else StringField
        widgets[name] = field_class(label, description=description)
    return widgets
