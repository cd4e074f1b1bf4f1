"""The plugin's two pages: what a page shows of a job, and their rendering.

The pages are Jinja templates in ``plugins/templates/`` (autoescaped), with their style and
script in ``plugins/static/``, put inline in each page: a page is one self-contained answer.
The pages live in Airflow's iframe. Every URL in them is relative to the plugin's root (set
by ``<base href>``), so they work under any base URL prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from airflow_provider_mistral_batch.models import BatchJobStatus
from airflow_provider_mistral_batch.plugins.job_view import JobView

#: The folder of this module: its ``templates/`` and ``static/`` are package data.
_HERE: Final = Path(__file__).resolve().parent
#: Seconds between two refreshes of a page with a job that may still change.
REFRESH_SECONDS: Final = 5


@dataclass(frozen=True)
class JobCard:
    """One job on a page.

    :param job_id: the job's id (shown even when the job could not be read).
    :param view: the job, or None when it could not be read (``problem`` says why).
    :param problem: what went wrong reading it.
    :param error_lines: the first lines of its error file.
    :param can_act: whether the user may download its files and cancel it.
    :param needs: what access downloading or cancelling would take, when missing.
    """

    job_id: str
    view: JobView | None = None
    problem: str | None = None
    error_lines: list[str] = field(default_factory=list)
    can_act: bool = False
    needs: str | None = None


def _num(value: float) -> str:
    """``12,345`` (a float shown as a whole number when it is one)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


def missing_access(cards: list[JobCard]) -> list[str]:
    """What access the user lacks to download or cancel the jobs shown, each said once."""
    needs: list[str] = []
    for card in cards:
        view = card.view
        if card.can_act or card.needs is None or view is None:
            continue
        offers = view.job.output_file or view.job.error_file or view.cancellable
        if offers and card.needs not in needs:
            needs.append(card.needs)
    return needs


@cache
def _environment() -> jinja2.Environment:
    """The pages' Jinja environment, built once per process."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        # Package data does not change while the process runs: each template is compiled
        # once, and a request does not stat its files.
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _num
    return environment


@cache
def _static(name: str) -> Markup:
    """A file of ``static/`` (the pages' style or script), read once, put in a page as is."""
    text = (_HERE / "static" / name).read_text(encoding="utf-8")
    return Markup(text)  # noqa: S704 (a file of this package, not user input)


def render(template: str, *, fragment: bool, base: str, title: str, **context: Any) -> str:
    """A whole page (``layout.html`` around ``template``) or, with ``fragment``, only the part
    the page's script swaps in on refresh.

    :param base: the plugin's root, relative to the page's URL (``./``, ``../../``...).
    """
    environment = _environment()
    if fragment:
        return environment.get_template(template).render(**context)
    return environment.get_template("layout.html").render(
        content_template=template,
        base=base,
        title=title,
        css=_static("plugin.css"),
        js=_static("plugin.js"),
        **context,
    )


def status_options() -> list[tuple[str, str]]:
    """The jobs page's status filter: (value, label), "all" first."""
    options = [("", "All"), ("active", "Active (queued, running, cancelling)")]
    options.extend((status.value, status.value) for status in BatchJobStatus)
    return options


__all__ = [
    "REFRESH_SECONDS",
    "JobCard",
    "missing_access",
    "render",
    "status_options",
]
