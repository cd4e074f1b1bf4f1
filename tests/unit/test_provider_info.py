"""Provider registration: the entry point and the connection form."""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow_provider_mistral_batch.get_provider_info import get_provider_info
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook


def test_entry_point_is_registered() -> None:
    points = entry_points(group="apache_airflow_provider")
    values = {point.value for point in points}
    assert "airflow_provider_mistral_batch.get_provider_info:get_provider_info" in values


def test_provider_info_describes_the_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-mistral-batch"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "mistral"
    assert conn_type["hook-class-name"].endswith("MistralBatchHook")
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"]["password"] == "API Key"
    assert {"schema", "port", "login"} <= set(behaviour["hidden-fields"])
    assert set(conn_type["conn-fields"]) == {
        "timeout",
        "connect_timeout",
        "max_retries",
        "console_url",
        "reattach_namespace",
    }


def test_hook_declares_the_same_form_for_airflow_3_1() -> None:
    assert MistralBatchHook.conn_type == "mistral"
    assert MistralBatchHook.default_conn_name == "mistral_default"
    behaviour = MistralBatchHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API Key"
    assert (
        behaviour["hidden_fields"]
        == get_provider_info()["connection-types"][0]["ui-field-behaviour"]["hidden-fields"]
    )


def test_provider_info_lists_the_airflow_parts_and_they_import() -> None:
    import importlib

    info = get_provider_info()
    modules = [
        module
        for kind in ("operators", "sensors", "triggers", "hooks")
        for entry in info[kind]
        for module in entry["python-modules"]
    ]
    assert len(modules) == 6
    assert "airflow_provider_mistral_batch.operators.cancel" in modules
    assert "airflow_provider_mistral_batch.operators.results" in modules
    for module in modules:
        importlib.import_module(module)
    (link,) = info["extra-links"]
    module_name, _, class_name = link.rpartition(".")
    assert hasattr(importlib.import_module(module_name), class_name)


def test_provider_info_registers_the_task_decorator_as_airflow_reads_it() -> None:
    import importlib

    # ProvidersManager reads "name" and "class-name" (upstream providers register alike).
    (decorator,) = get_provider_info()["task-decorators"]
    assert decorator["name"] == "mistral_batch"
    module_name, _, function_name = decorator["class-name"].rpartition(".")
    assert module_name == "airflow_provider_mistral_batch.decorators.mistral_batch"
    assert callable(getattr(importlib.import_module(module_name), function_name))


def test_task_mistral_batch_resolves_through_the_provider_registration() -> None:
    from airflow.sdk import task

    from airflow_provider_mistral_batch.decorators.mistral_batch import mistral_batch_task

    assert task.mistral_batch is mistral_batch_task
