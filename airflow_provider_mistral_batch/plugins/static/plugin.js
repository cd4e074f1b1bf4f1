// The script of the plugin's pages, put inline in each page by templates/layout.html.
// The pages live in Airflow's iframe. The script refreshes a page while one of its jobs may
// still change (its #content's data-refresh, in seconds), sends Cancel as a same-origin JSON
// POST, and follows links to Airflow's pages and file downloads through the parent page:
// Airflow's iframe sandbox blocks top navigation (and, on Airflow 3.1, downloads) from inside
// it.
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
    // A round's job id: scroll to its card (the page's <base> would send "#id" elsewhere).
    var jump = target.closest("a[data-jump]");
    if (jump) {
      var card = document.getElementById(jump.getAttribute("data-jump"));
      if (card) { event.preventDefault(); card.scrollIntoView(); }
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
