"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_mistral_batch import __version__
from airflow_provider_mistral_batch.connection_form import (
    provider_conn_fields,
    provider_ui_field_behaviour,
)

HOOK_CLASS = "airflow_provider_mistral_batch.hooks.mistral_batch.MistralBatchHook"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow: package, hooks, the ``mistral`` connection type and
    the ``@task.mistral_batch`` decorator."""
    return {
        # Must equal the canonical distribution name, or `airflow providers list` breaks.
        "package-name": "airflow-provider-mistral-batch",
        "name": "Mistral AI Batch",
        "description": "Run Mistral AI batch inference jobs (Files + Batch API) from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Mistral AI Batch",
                "external-doc-url": "https://docs.mistral.ai/capabilities/batch/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Mistral AI Batch",
                "python-modules": [
                    "airflow_provider_mistral_batch.operators.batch",
                    "airflow_provider_mistral_batch.operators.cancel",
                    "airflow_provider_mistral_batch.operators.results",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Mistral AI Batch",
                "python-modules": ["airflow_provider_mistral_batch.sensors.batch"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Mistral AI Batch",
                "python-modules": ["airflow_provider_mistral_batch.triggers.batch"],
            }
        ],
        # `@task.mistral_batch`: the key names and shape Airflow's ProvidersManager reads.
        "task-decorators": [
            {
                "name": "mistral_batch",
                "class-name": (
                    "airflow_provider_mistral_batch.decorators.mistral_batch.mistral_batch_task"
                ),
            }
        ],
        "extra-links": ["airflow_provider_mistral_batch.links.MistralBatchJobLink"],
        # No "plugins" here: the UI plugin registers through the `airflow.plugins` entry point,
        # which every configuration loads. This list is read only with [core]
        # lazy_discover_providers = False, and then the plugin would be registered twice
        # ("already registered", shown as a plugin import error).
        "hooks": [
            {
                "integration-name": "Mistral AI Batch",
                "python-modules": ["airflow_provider_mistral_batch.hooks.mistral_batch"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "mistral",
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Mistral AI",
                "conn-fields": provider_conn_fields(),
                "ui-field-behaviour": provider_ui_field_behaviour(),
            }
        ],
    }
