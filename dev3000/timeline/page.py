"""``GET /timeline``: a small server-rendered page that follows the SSE stream live.

The newest events matching the page's filters (``kinds``, ``severity``, ``sources``) are
rendered by the server; the page then opens the SSE stream with ``resume_from`` set to the
newest one it shows, so nothing between the render and the connection is lost, and adds
each new event at the top. The browser's ``EventSource`` reconnects by itself with
``Last-Event-ID``. With authentication on, open ``/timeline?token=<key>``. A
``browser_screenshot`` event links to its PNG (``/api/v1/browser/screenshots/<id>``).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

from guilde_core.events import TimelineEvent

from .filters import KINDS, SEVERITIES, EventFilter

__all__ = ["render_timeline_page"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#ddd}
header{padding:.6em 1em;background:#1c1c1c;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
h1{font-size:1.1em;margin:0}
#state{font-size:.85em;color:#999}
table{border-collapse:collapse;width:100%}
td,th{padding:.25em .6em;border-bottom:1px solid #222;text-align:left;vertical-align:top}
th{color:#999;font-weight:normal}
.sev-debug{color:#888}.sev-info{color:#8ab4f8}.sev-warning{color:#fbbc04}
.sev-error{color:#f28b82}.sev-critical{color:#fff;background:#a50e0e}
tr.gap td{color:#fbbc04;font-style:italic}
td.ts{white-space:nowrap;color:#999;font-family:monospace}
a.shot{color:#8ab4f8}
"""

_SCRIPT = """
(function () {
  const cfg = JSON.parse(document.getElementById("cfg").textContent);
  const body = document.getElementById("events");
  const state = document.getElementById("state");
  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function add(ev) {
    if (body.querySelector('tr[data-id="' + CSS.escape(ev.id) + '"]')) return;
    const tr = document.createElement("tr");
    tr.dataset.id = ev.id;
    tr.dataset.kind = ev.kind;
    tr.dataset.severity = ev.severity;
    cell(tr, ev.ts, "ts");
    cell(tr, ev.severity, "sev-" + ev.severity);
    cell(tr, ev.kind);
    cell(tr, ev.source);
    cell(tr, ev.subject);
    cell(tr, ev.summary);
    const shot = ev.data && ev.data.screenshot_id;
    if (shot && /^[0-9a-f]{16}$/.test(shot)) {
      const a = document.createElement("a");
      a.className = "shot";
      a.textContent = "screenshot";
      a.target = "_blank";
      a.href = cfg.screenshots + shot + (cfg.params.token ? "?token=" + encodeURIComponent(cfg.params.token) : "");
      tr.lastChild.append(" ", a);
    }
    body.insertBefore(tr, body.firstChild);
    while (body.children.length > cfg.max_rows) body.removeChild(body.lastChild);
  }
  function notice(text) {
    const tr = document.createElement("tr");
    tr.className = "gap";
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = text;
    tr.appendChild(td);
    body.insertBefore(tr, body.firstChild);
  }
  const q = new URLSearchParams(cfg.params);
  if (cfg.last_id) q.set("resume_from", cfg.last_id);
  const source = new EventSource(cfg.stream + (q.toString() ? "?" + q : ""));
  source.onopen = function () {
    state.textContent = "live";
    document.body.dataset.stream = "open";
  };
  source.onerror = function () {
    state.textContent = "reconnecting…";
    document.body.dataset.stream = "reconnecting";
  };
  source.addEventListener("timeline", function (e) { add(JSON.parse(e.data)); });
  source.addEventListener("gap", function (e) {
    const gap = JSON.parse(e.data);
    notice("gap: " + (gap.missed === null ? "some" : gap.missed) + " event(s) missed — " + gap.detail);
  });
  source.addEventListener("close", function (e) {
    const info = JSON.parse(e.data);
    state.textContent = "closed by server: " + info.reason;
  });
})();
"""


def _options(name: str, values: tuple[str, ...], selected: str | None, blank: str) -> str:
    opts = [f'<option value="">{html.escape(blank)}</option>']
    for value in values:
        attr = " selected" if value == selected else ""
        opts.append(f'<option value="{html.escape(value)}"{attr}>{html.escape(value)}</option>')
    return f'<select name="{name}" onchange="this.form.submit()">' + "".join(opts) + "</select>"


SCREENSHOTS_PATH = "/api/v1/browser/screenshots/"


def _shot_link(event: TimelineEvent, token: str | None) -> str:
    """A link to the PNG of a ``browser_screenshot`` event (served by dev3000)."""
    shot = event.data.get("screenshot_id")
    if not isinstance(shot, str) or not re.fullmatch(r"[0-9a-f]{16}", shot):
        return ""
    query = f"?{urlencode({'token': token})}" if token else ""
    href = html.escape(SCREENSHOTS_PATH + shot + query)
    return f' <a class="shot" target="_blank" href="{href}">screenshot</a>'


def _row(event: TimelineEvent, token: str | None = None) -> str:
    e = html.escape
    return (
        f'<tr data-id="{e(event.id)}" data-kind="{e(event.kind)}" '
        f'data-severity="{e(event.severity)}">'
        f'<td class="ts">{e(event.ts.isoformat())}</td>'
        f'<td class="sev-{e(event.severity)}">{e(event.severity)}</td>'
        f"<td>{e(event.kind)}</td><td>{e(event.source)}</td>"
        f"<td>{e(event.subject)}</td><td>{e(event.summary)}{_shot_link(event, token)}</td></tr>"
    )


def render_timeline_page(
    events: list[TimelineEvent],
    event_filter: EventFilter,
    *,
    stream_path: str,
    params: dict[str, str],
    max_rows: int = 500,
) -> str:
    """The page: ``events`` (oldest first) rendered newest first, plus the live script."""
    kind = next(iter(sorted(event_filter.kinds)), None) if event_filter.kinds else None
    token = params.get("token")
    hidden = f'<input type="hidden" name="token" value="{html.escape(token)}">' if token else ""
    cfg: dict[str, Any] = {
        "stream": stream_path,
        "params": params,
        "last_id": events[-1].id if events else None,
        "max_rows": max_rows,
        "screenshots": SCREENSHOTS_PATH,
    }
    rows = "".join(_row(e, token) for e in reversed(events))
    # </script> cannot appear in JSON from json.dumps once "<" is escaped
    cfg_json = json.dumps(cfg).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dev3000 timeline</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style></head>
<body data-stream="connecting">
<header><h1>dev3000 timeline</h1>
<form method="get" action="">{hidden}
<label>kind {_options("kinds", KINDS, kind, "any")}</label>
<label>severity ≥ {_options("severity", SEVERITIES, event_filter.severity, "any")}</label>
</form><span id="state">connecting…</span></header>
<table><thead><tr><th>time</th><th>severity</th><th>kind</th><th>source</th><th>subject</th>
<th>summary</th></tr></thead><tbody id="events">{rows}</tbody></table>
<script type="application/json" id="cfg">{cfg_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
