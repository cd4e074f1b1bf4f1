"""The HTML of the plugin's two pages (Jinja templates, autoescaped), their style and script.

The pages live in Airflow's iframe. Every URL in them is relative to the plugin's root (set
by ``<base href>``), so they work under any base URL prefix. The script refreshes a page
while one of its jobs may still change, sends Cancel as a same-origin JSON POST, and follows
links to Airflow's pages and file downloads through the parent page: Airflow's iframe sandbox
blocks top navigation (and, on Airflow 3.1, downloads) from inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

import jinja2
from markupsafe import Markup

from airflow_provider_mistral_batch.models import BatchJobStatus
from airflow_provider_mistral_batch.plugins.job_view import JobView

#: Seconds between two refreshes of a page with a job that may still change.
REFRESH_SECONDS: Final = 5
#: The "active" status filter of the jobs page: jobs that may still change.
ACTIVE_STATUSES: Final = (
    BatchJobStatus.QUEUED,
    BatchJobStatus.RUNNING,
    BatchJobStatus.CANCELLATION_REQUESTED,
)


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


# Airflow's own type (its Chakra theme's tokens): the body font stack, the mono stack, line
# height 1.5 and the sizes sm (14px) for text, xs (12px) for small print, lg/md for headings.
_CSS: Final = """
:root { --font: Inter, -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial,
  sans-serif, "Apple Color Emoji", "Segoe UI Emoji", "Segoe UI Symbol";
  --mono: SFMono-Regular, Menlo, Monaco, Consolas, "Liberation Mono", "Courier New", monospace; }
:root { color-scheme: light; --fg: #1a202c; --muted: #64748b; --bg: #ffffff; --panel: #f8fafc;
  --line: #e2e8f0; --accent: #0369a1; --ok: #16a34a; --bad: #dc2626; --track: #e2e8f0; }
:root.dark { color-scheme: dark; --fg: #e2e8f0; --muted: #94a3b8; --bg: #0f172a;
  --panel: #111c31; --line: #1e293b; --accent: #38bdf8; --ok: #22c55e; --bad: #f87171;
  --track: #1e293b; }
@media (prefers-color-scheme: dark) { :root:not(.light) { color-scheme: dark; --fg: #e2e8f0;
  --muted: #94a3b8; --bg: #0f172a; --panel: #111c31; --line: #1e293b; --accent: #38bdf8;
  --ok: #22c55e; --bad: #f87171; --track: #1e293b; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 12px 16px; font-family: var(--font); font-size: 14px;
  line-height: 1.5; color: var(--fg); background: var(--bg); }
h1 { font-size: 18px; font-weight: 600; margin: 0; }
h2 { font-size: 16px; font-weight: 600; margin: 0 0 6px; }
code { font-family: var(--mono); font-size: 12px; }
/* Ids (run ids above all), model names and buttons never break inside. */
.id, code, .button, button { white-space: nowrap; }
.pre-line { white-space: pre-line; }
.table-scroll { overflow-x: auto; }
a { color: var(--accent); }
.bar { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 16px; margin-bottom: 12px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
.problem { border: 1px solid var(--bad); color: var(--bad); border-radius: 6px;
  padding: 8px 10px; margin: 8px 0; }
.notice { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin: 8px 0; }
.job, .usage { border: 1px solid var(--line); background: var(--panel); border-radius: 8px;
  padding: 12px 14px; margin: 0 0 12px; }
.job-head { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-bottom: 4px; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 12px;
  font-weight: 600; color: #fff; background: #64748b; white-space: nowrap; }
.badge.queued { background: #78716c; } .badge.running { background: #0284c7; }
.badge.success { background: #16a34a; } .badge.failed { background: #dc2626; }
.badge.timeout_exceeded { background: #c2410c; }
.badge.cancellation_requested { background: #ca8a04; }
.badge.cancelled { background: #57534e; }
.progress { display: flex; height: 10px; border-radius: 5px; overflow: hidden;
  background: var(--track); min-width: 120px; margin: 6px 0 2px; }
.progress .ok { background: var(--ok); } .progress .bad { background: var(--bad); }
.counts { margin: 0; font-size: 12px; }
dl.times { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
dl.times dt { color: var(--muted); } dl.times dd { margin: 0; }
ul.errors { margin: 6px 0; padding-left: 18px; }
ul.errors li { font-family: var(--mono); font-size: 12px; word-break: break-word; }
.actions { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-top: 8px; }
.button, button { display: inline-block; font: inherit; font-size: 14px; padding: 4px 12px;
  border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg);
  text-decoration: none; cursor: pointer; }
.button:hover, button:hover { border-color: var(--accent); }
button.danger { border-color: var(--bad); color: var(--bad); }
button.danger[data-armed="1"] { background: var(--bad); color: #fff; }
button:disabled { opacity: .6; cursor: default; }
form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
  margin-bottom: 12px; }
select { font: inherit; padding: 3px 6px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg); }
table.jobs { border-collapse: collapse; width: 100%; }
table.jobs th, table.jobs td { text-align: left; vertical-align: top; padding: 7px 8px;
  border-bottom: 1px solid var(--line); }
table.jobs th { font-size: 12px; color: var(--muted); font-weight: 600; }
table.jobs td.progress-cell { min-width: 180px; }
nav.pages { display: flex; gap: 12px; margin-top: 10px; align-items: center; }
"""

_JS: Final = """
(function () {
  "use strict";
  var framed = window.top !== window.self;
  try {  // follow the color mode of Airflow's UI around the iframe (same origin)
    var outer = window.parent.document.documentElement;
    if (outer.classList.contains("dark")) document.documentElement.classList.add("dark");
    else if (outer.classList.contains("light")) document.documentElement.classList.add("light");
  } catch (e) {}

  function content() { return document.getElementById("content"); }

  // Airflow's iframe sandbox blocks top navigation (and downloads on Airflow 3.1): an
  // anchor of the parent page follows the link instead. Same origin, so this is allowed.
  function viaParent(link, download) {
    try {
      var doc = window.top.document;
      var anchor = doc.createElement("a");
      anchor.href = new URL(link.getAttribute("href"), document.baseURI).href;
      if (download) anchor.setAttribute("download", "");
      anchor.style.display = "none";
      doc.body.appendChild(anchor);
      anchor.click();
      doc.body.removeChild(anchor);
      return true;
    } catch (e) {
      return false;
    }
  }

  // The message line: what a Cancel did stays until the next Cancel; a lost session's
  // notice goes with the next refresh that works.
  var sessionNotice = false;
  function say(text, session) {
    var box = document.getElementById("message");
    if (box) { box.textContent = text; box.hidden = !text; }
    sessionNotice = Boolean(session);
  }

  // Jobs whose Cancel failed: their button says so again after each refresh.
  var failed = {};
  function markFailed() {
    Object.keys(failed).forEach(function (jobId) {
      var button = null;
      document.querySelectorAll("[data-job-id] button[data-cancel]").forEach(function (found) {
        if (found.closest("[data-job-id]").getAttribute("data-job-id") === jobId) button = found;
      });
      if (!button) { delete failed[jobId]; return; }  // ended or being cancelled: moot
      button.textContent = "Cancel failed: try again";
      button.title = failed[jobId];
    });
  }

  var timer = null;
  var cancelling = 0;  // cancel requests in flight: a refresh would replace their button
  function schedule() {
    window.clearTimeout(timer);
    var box = content();
    var seconds = box ? Number(box.getAttribute("data-refresh") || "0") : 0;
    if (seconds > 0) timer = window.setTimeout(refresh, seconds * 1000);
  }

  function refresh() {
    // Paused while a Cancel waits for its confirming click or its answer, never longer: a
    // disabled button (a cancel under way) must not stop the page from following the job.
    if (document.hidden || cancelling > 0 || document.querySelector("button[data-armed='1']")) {
      schedule();
      return;
    }
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          say("Your Airflow session has ended or lost access: log in again and reload.", true);
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var box = content();
        if (box) box.outerHTML = html;
        if (sessionNotice) say("");
        markFailed();
        schedule();
      })
      .catch(function () { schedule(); });
  }

  function detail(body) {  // FastAPI's error body: a string, or a list of validation errors
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map(function (item) { return item.msg || String(item); }).join("; ");
    }
    return "";
  }

  function disarm(button) {
    button.removeAttribute("data-armed");
    button.disabled = false;
    button.textContent = "Cancel job";
  }

  function cancel(button) {
    if (button.getAttribute("data-armed") !== "1") {
      // No confirm(): the sandbox blocks dialogs. A second click within 5 s confirms.
      button.setAttribute("data-armed", "1");
      button.textContent = "Click again to cancel";
      window.setTimeout(function () {
        if (button.isConnected && !button.disabled) disarm(button);
      }, 5000);
      return;
    }
    var jobId = button.closest("[data-job-id]").getAttribute("data-job-id");
    button.disabled = true;
    button.textContent = "Cancelling…";
    button.removeAttribute("title");
    cancelling += 1;
    fetch(new URL(button.getAttribute("data-cancel"), document.baseURI).href, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ conn_id: button.getAttribute("data-conn-id") })
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) throw new Error(detail(body) || ("HTTP " + response.status));
          delete failed[jobId];
          // The job's new status until the refresh below shows the job as it is now.
          button.removeAttribute("data-armed");
          button.textContent = body.status === "CANCELLED" ? "Cancelled" : "Cancelling…";
          say("Cancellation requested for job " + body.id + " (" + body.status + ").");
        });
      })
      .catch(function (error) {
        disarm(button);
        failed[jobId] = error.message;
        markFailed();
        say("Cancel failed for job " + jobId + ": " + error.message);
      })
      .then(function () {
        cancelling -= 1;
        refresh();
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var link = target.closest("a[data-top], a[data-download]");
    if (link) {
      var plain = event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey;
      if (framed && plain && viaParent(link, link.hasAttribute("data-download"))) {
        event.preventDefault();
      }
      return;
    }
    var button = target.closest("button[data-cancel]");
    if (button) {
      event.preventDefault();
      cancel(button);
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
      target.form.submit();
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedule();
  });
  schedule();
})();
"""

_TEMPLATES: Final = {
    "layout.html": """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<base href="{{ base }}">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<p id="message" class="notice" role="status" hidden></p>
{% include content_template %}
<script>{{ js }}</script>
</body>
</html>
""",
    "progress.html": """<div class="progress" role="progressbar" aria-label="completed requests"
 aria-valuemin="0" aria-valuemax="100" aria-valuenow="{{ '%.1f' | format(v.completed_percent) }}">
<span class="ok" style="width: {{ '%.2f' | format(v.succeeded_percent) }}%"></span>
<span class="bad" style="width: {{ '%.2f' | format(v.failed_percent) }}%"></span>
</div>
<p class="counts">{% if v.job.total_requests > 0 -%}
<span data-counts>{{ v.job.completed_requests | num }} / {{ v.job.total_requests | num }}</span>
completed ({{ '%.1f' | format(v.completed_percent) }}%) ·
{{ v.job.succeeded_requests | num }} succeeded · {{ v.job.failed_requests | num }} failed
{%- else %}input not validated yet{% endif %}</p>
""",
    "actions.html": """{% set v = card.view -%}
{% if card.can_act -%}
{% if v.job.output_file %}<a class="button" data-download
 href="jobs/{{ v.job.id | urlencode }}/files/output?conn_id={{ conn_id | urlencode }}">Download
 output</a>{% endif %}
{% if v.job.error_file %}<a class="button" data-download
 href="jobs/{{ v.job.id | urlencode }}/files/error?conn_id={{ conn_id | urlencode }}">Download
 errors</a>{% endif %}
{% if v.cancellable %}<button type="button" class="danger"
 data-cancel="jobs/{{ v.job.id | urlencode }}/cancel" data-conn-id="{{ conn_id }}">Cancel
 job</button>
{%- elif v.active %}<button type="button" class="danger" disabled
 data-cancelling>Cancelling…</button>{% endif %}
{%- endif %}
""",
    # Said once per page, not on every row a viewer may not act on.
    "needs.html": """{% if needs %}<p class="muted small" data-needs>Downloading files or cancelling
 {{ "jobs" if cards | length > 1 else "the job" }} needs {{ needs | join("; or ") }}.</p>
{% endif %}""",
    "task_tab.html": """<div id="content" data-refresh="{{ refresh }}">
<header class="bar">
<h1>Mistral batch</h1>
<span class="muted">connection <code>{{ conn_id }}</code> · task state {{ state or "unknown" }}
 · updated <span data-updated>{{ updated }}</span></span>
</header>
{% if problem %}<p class="problem">{{ problem }}</p>{% endif %}
{% if not cards and not not_shown and not problem -%}
{% if input_error -%}
<p class="problem">The task failed before it created a Mistral batch job, on its input:<br>
<span class="pre-line" data-input-error>{{ input_error }}</span></p>
{%- elif state == "failed" -%}
<p class="problem" data-task-failed>The task failed without recording a Mistral batch job: if
 it is a Mistral batch task, its log (the Logs tab) says why.</p>
{%- else -%}
<p class="notice">{% if refresh -%}
No Mistral batch job recorded for this task instance yet: this page refreshes by itself.
{%- else -%}
This task instance recorded no Mistral batch job (the tab is shown on every task).
{%- endif %}</p>
{%- endif %}
{%- endif %}
{% include "needs.html" %}
{% if not_shown %}<section class="notice" data-not-shown><h2>Not shown</h2>
<p class="small">The task's XCom names {{ "these jobs" if not_shown | length > 1 else "this job" }},
 but the tab does not show {{ "them" if not_shown | length > 1 else "it" }}:</p>
<ul class="small">{% for job_id, reason in not_shown %}<li><code>{{ job_id }}</code>:
 {{ reason }}</li>
{% endfor %}</ul></section>{% endif %}
{% if usage %}<section class="usage"><h2>Token usage</h2>
<p>{% for key, value in usage.items() %}{{ key }} <strong>{{ value | num }}</strong>
{%- if not loop.last %} · {% endif %}{% endfor %}</p></section>{% endif %}
{% for card in cards %}{% set v = card.view %}
<article class="job" data-job-id="{{ card.job_id }}">
<div class="job-head"><code>{{ card.job_id }}</code>
{% if v %}<span class="badge {{ v.status_class }}" data-status>{{ v.job.status }}</span>
<span class="muted small">{{ v.job.endpoint }}
{%- if v.job.model %} · {{ v.job.model }}{% endif %}</span>{% endif %}
</div>
{% if card.problem %}<p class="problem">{{ card.problem }}</p>{% endif %}
{% if v %}
{% include "progress.html" %}
<dl class="times">
<dt>Created</dt><dd>{{ v.created }}</dd>
<dt>Started</dt><dd>{{ v.started or "not yet" }}</dd>
<dt>Ended</dt><dd>{{ v.ended or "not yet" }}</dd>
{% if v.duration %}<dt>{{ "Running for" if v.active else "Ran for" }}</dt>
<dd>{{ v.duration }}</dd>{% endif %}
{% if v.eta %}<dt>ETA</dt><dd data-eta>{{ v.eta }}</dd>{% endif %}
</dl>
{% if v.job.errors %}<h2>Errors reported by the job</h2><ul class="errors">
{% for error in v.job.errors %}<li>{{ error.message }}
{%- if error.count > 1 %} ({{ error.count | num }} times){% endif %}</li>
{% endfor %}</ul>{% endif %}
{% if card.error_lines %}<h2>First lines of the error file</h2><ul class="errors" data-error-lines>
{% for line in card.error_lines %}<li>{{ line }}</li>
{% endfor %}</ul>{% endif %}
<div class="actions">{% include "actions.html" %}</div>
{% endif %}
</article>
{% endfor %}
</div>
""",
    "jobs_page.html": """<div id="content" data-refresh="{{ refresh }}">
<header class="bar">
<h1>Mistral batch jobs</h1>
<span class="muted">newest first · updated <span data-updated>{{ updated }}</span></span>
</header>
<form class="filters" method="get" action="jobs">
<label>Connection
<select name="conn_id" data-autosubmit>
{% for option in conn_ids %}<option value="{{ option }}"
{%- if option == conn_id %} selected{% endif %}>{{ option }}</option>
{% endfor %}</select></label>
<label>Status
<select name="status" data-autosubmit>
{% for value, label in status_options %}<option value="{{ value }}"
{%- if value == status %} selected{% endif %}>{{ label }}</option>
{% endfor %}</select></label>
<noscript><button type="submit">Show</button></noscript>
</form>
{% if problem %}<p class="problem">{{ problem }}</p>{% endif %}
{% if conn_id and not problem %}
{% include "needs.html" %}
<div class="table-scroll">
<table class="jobs">
<thead><tr><th>Created</th><th>Job</th><th>Status</th><th>Progress</th><th>Model</th>
<th>Made by</th><th>Actions</th></tr></thead>
<tbody>
{% for card in cards %}{% set v = card.view %}
<tr data-job-id="{{ v.job.id }}">
<td class="small">{{ v.created }}</td>
<td><code>{{ v.job.id }}</code><div class="muted small">{{ v.job.endpoint }}</div></td>
<td><span class="badge {{ v.status_class }}" data-status>{{ v.job.status }}</span>
{% if v.eta %}<div class="muted small">ETA {{ v.eta }}</div>{% endif %}</td>
<td class="progress-cell">{% include "progress.html" %}</td>
<td><span class="id">{{ v.job.model or "—" }}</span></td>
<td>{% if v.made_by %}{% set m = v.made_by %}<a data-top href="../{{ m.task_path }}"><span
 class="id">{{ m.dag_id }}</span> / <span class="id">{{ m.run_id }}</span> / <span
 class="id">{{ m.task_id }}{% if m.map_index >= 0 %}[{{ m.map_index }}]{% endif %}</span></a>
<div class="small"><a data-top href="../{{ v.made_by.run_path }}">DAG run</a></div>
{%- else %}<span class="muted">outside Airflow</span>{% endif %}</td>
<td><div class="actions">{% include "actions.html" %}</div></td>
</tr>
{% else %}
<tr><td colspan="7" class="muted">No batch jobs{% if status %} with this status{% endif %}
{%- if hidden %} you may see{% endif %}.</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% if hidden %}<p class="muted small">{{ hidden }} job(s) of this page are not shown: they
belong to DAGs you cannot read, or were made outside Airflow (shown to those who may edit
connection {{ conn_id }}).</p>{% endif %}
<nav class="pages">
{% if page > 0 %}<a href="{{ page_url(page - 1) }}">← Newer</a>{% endif %}
<span class="muted small">page {{ page + 1 }} of {{ pages }} · {{ total | num }} jobs</span>
{% if page + 1 < pages %}<a href="{{ page_url(page + 1) }}">Older →</a>{% endif %}
</nav>
{% endif %}
</div>
""",
}


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
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _num
    return environment


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
        css=Markup(_CSS),  # noqa: S704 (a constant of this module)
        js=Markup(_JS),  # noqa: S704 (a constant of this module)
        **context,
    )


def status_options() -> list[tuple[str, str]]:
    """The jobs page's status filter: (value, label), "all" first."""
    options = [("", "All"), ("active", "Active (queued, running, cancelling)")]
    options.extend((status.value, status.value) for status in BatchJobStatus)
    return options


__all__ = [
    "ACTIVE_STATUSES",
    "REFRESH_SECONDS",
    "JobCard",
    "missing_access",
    "render",
    "status_options",
]
