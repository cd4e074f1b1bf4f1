"""Extra link from a task to its batch job in Mistral's console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperatorLink

from airflow_provider_mistral_batch.connection_form import DEFAULT_CONSOLE_URL

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def job_console_url(job_id: str, console_url: str = DEFAULT_CONSOLE_URL) -> str:
    """The console page of a batch job (``console_url`` comes from the connection extras)."""
    return f"{console_url.rstrip('/')}/build/batches/{job_id}"


class MistralBatchJobLink(BaseOperatorLink):
    """The "Mistral batch job" button: the job's page in Mistral's console.

    The operator stores the full URL in XCom (under :attr:`xcom_key`) once the job exists,
    which is where Airflow 3's UI reads it from.
    """

    name = "Mistral batch job"

    @classmethod
    def persist(cls, context: Any, job_id: str, console_url: str = DEFAULT_CONSOLE_URL) -> str:
        """Store the job's console URL for the UI; returns it."""
        url = job_console_url(job_id, console_url)
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
        return url

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL stored by :meth:`persist`, or an empty string before the job exists."""
        from airflow.sdk.bases.xcom import BaseXCom

        value = BaseXCom.get_value(ti_key=cast(Any, ti_key), key=self.xcom_key)
        return str(value) if value else ""
