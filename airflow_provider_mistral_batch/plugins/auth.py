"""Who may see and act on which batch job: the plugin's permission rules, asked of Airflow.

Every route depends on :func:`current_access`, which authenticates the request the way the
api-server's own endpoints do (Airflow's ``get_user``: an ``Authorization: Bearer`` JWT, else
the UI's ``_token`` cookie; no token is a 401) and answers permission questions through the
configured auth manager:

- reading a task instance's jobs: read access to that DAG's task instances and XComs;
- seeing a job in the jobs list: read access to the task instances of the DAG named by the
  job's ``airflow_dag_id`` metadata;
- downloading a job's files or cancelling it: edit access to that DAG;
- a job without ``airflow_dag_id`` (made outside Airflow): edit access to the ``mistral``
  connection it is reached through;
- a job on a task instance's tab: its metadata must name that DAG run (the job ids come from
  XCom, which a user may write); a job made outside Airflow is shown there to those who may
  edit its connection, like on the jobs page.

A download or cancel is refused before the job is read when the user may edit neither the
connection nor any DAG; a refusal of a job the user may not see says only "Forbidden".

Jobs made outside Airflow go with their connection because whoever may edit a connection
controls its API key (they can point it anywhere and use it), so this grants nothing they
lack; Airflow's auth managers have no common "admin" check, and the connection is the
resource these jobs belong to.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import (
    ConnectionDetails,
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request, status

from airflow_provider_mistral_batch.models import DAG_ID_METADATA, BatchJob
from airflow_provider_mistral_batch.plugins.job_view import made_by

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod


def job_dag_id(job: BatchJob) -> str | None:
    """The DAG that made ``job``, from its metadata; None for a job made outside Airflow."""
    value = (job.metadata or {}).get(DAG_ID_METADATA)
    return value if isinstance(value, str) and value else None


class Access:
    """What one authenticated user may do; each question reaches the auth manager once."""

    def __init__(self, user: BaseUser) -> None:
        self.user = user
        self._answers: dict[Hashable, bool] = {}

    def _ask(self, key: Hashable, question: Callable[[], bool]) -> bool:
        if key not in self._answers:
            self._answers[key] = bool(question())
        return self._answers[key]

    def _dag(self, dag_id: str, method: ResourceMethod, entity: DagAccessEntity | None) -> bool:
        def question() -> bool:
            from airflow.models.dag import DagModel

            details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
            return get_auth_manager().is_authorized_dag(
                method=method, access_entity=entity, details=details, user=self.user
            )

        return self._ask(("dag", dag_id, method, entity), question)

    def can_read_task_jobs(self, dag_id: str) -> bool:
        """Whether the user may read a task instance's jobs (its task instances and XComs)."""
        return self._dag(dag_id, "GET", DagAccessEntity.TASK_INSTANCE) and self._dag(
            dag_id, "GET", DagAccessEntity.XCOM
        )

    def can_manage_connection(self, conn_id: str) -> bool:
        """Whether the user may edit connection ``conn_id`` (and so act on jobs made outside
        Airflow that are reached through it)."""

        def question() -> bool:
            from airflow.models.connection import Connection

            details = ConnectionDetails(
                conn_id=conn_id, team_name=Connection.get_team_name(conn_id)
            )
            return get_auth_manager().is_authorized_connection(
                method="PUT", details=details, user=self.user
            )

        return self._ask(("connection", conn_id), question)

    def can_see_job(self, job: BatchJob, conn_id: str) -> bool:
        """Whether the jobs list may show ``job`` (reached through ``conn_id``) to the user."""
        dag_id = job_dag_id(job)
        if dag_id is None:
            return self.can_manage_connection(conn_id)
        return self._dag(dag_id, "GET", DagAccessEntity.TASK_INSTANCE)

    def can_act_on_job(self, job: BatchJob, conn_id: str) -> bool:
        """Whether the user may download ``job``'s files or cancel it."""
        dag_id = job_dag_id(job)
        if dag_id is None:
            return self.can_manage_connection(conn_id)
        return self._dag(dag_id, "PUT", None)

    def may_act_on_some_job(self, conn_id: str) -> bool:
        """Whether the user may act on any job of ``conn_id`` at all (edit access to it or to
        at least one DAG): asked before a job is read, so a refusal reveals nothing of it."""
        if self.can_manage_connection(conn_id):
            return True

        def question() -> bool:
            manager = get_auth_manager()
            # Edit access to DAGs in general (a role), else to at least one existing DAG.
            if manager.is_authorized_dag(method="PUT", user=self.user):
                return True
            return bool(manager.get_authorized_dag_ids(user=self.user, method="PUT"))

        return self._ask(("some dag", "PUT"), question)

    @staticmethod
    def act_needs(conn_id: str) -> str:
        """What access acting on a job of ``conn_id`` takes, in general."""
        return f"edit access to the job's DAG, or to connection {conn_id!r}"

    def why_not_on_tab(self, job: BatchJob, dag_id: str, run_id: str, conn_id: str) -> str | None:
        """Why a task instance's tab (of DAG ``dag_id``, run ``run_id``) may not show ``job``,
        whose id came from the task's XCom; None when it may.

        The task need not match: a sensor's tab shows the job its run's create task made.
        """
        job_dag = job_dag_id(job)
        if job_dag is None:
            if self.can_manage_connection(conn_id):
                return None
            return (
                "it was made outside Airflow; such jobs are shown to those who may edit "
                f"connection {conn_id!r}"
            )
        maker = made_by(job)
        if maker is not None and maker.dag_id == dag_id and maker.run_id == run_id:
            return None
        return "its metadata names another DAG run than this task's"

    def require_task_jobs(self, dag_id: str) -> None:
        """Raise 403 unless :meth:`can_read_task_jobs`."""
        if not self.can_read_task_jobs(dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")

    def missing_to_act(self, job: BatchJob, conn_id: str) -> str | None:
        """What access acting on ``job`` would take, or None when the user has it."""
        if self.can_act_on_job(job, conn_id):
            return None
        dag_id = job_dag_id(job)
        if dag_id is not None:
            return f"edit access to DAG {dag_id!r}"
        return f"edit access to connection {conn_id!r} (the job was made outside Airflow)"

    def require_act_on_job(self, job: BatchJob, conn_id: str) -> None:
        """Raise 403 unless :meth:`can_act_on_job`: saying what access is missing when the
        user may see the job, only "Forbidden" otherwise."""
        missing = self.missing_to_act(job, conn_id)
        if missing is None:
            return
        if self.can_see_job(job, conn_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: this needs {missing}")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def current_access(user: Annotated[BaseUser, Depends(get_user)]) -> Access:
    """The request's :class:`Access` (401 without a token, as the api-server's endpoints)."""
    return Access(user)


AccessDep = Annotated[Access, Depends(current_access)]


def same_origin_json(request: Request, _access: AccessDep) -> None:
    """Refuse a state-changing request a cross-site page could have sent with the cookie.

    A JSON body is required (a cross-site form cannot send one, and a cross-site script
    cannot without a CORS preflight the plugin never answers), and a browser that says the
    request came from another site (``Sec-Fetch-Site``) is refused. Runs after the login check.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send a JSON body (application/json)"
        )
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-site request refused")


__all__ = [
    "Access",
    "AccessDep",
    "current_access",
    "job_dag_id",
    "same_origin_json",
]
