"""The ``mistral`` connection form: one definition for the provider info and the hook.

Imports nothing that imports Airflow: ``get_provider_info`` uses it during Airflow's start.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_mistral_batch.connection_defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CONSOLE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)

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
        "Root of Mistral's web console, used for links to batch jobs.",
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
