// SPDX-License-Identifier: MIT
// enrichfarm dashboard: plain JavaScript, no framework, no build step.
// Lists come from the JSON routes (every few seconds); job progress comes
// live from GET /events?queue=Q (Server-Sent Events), which statusd feeds
// from the workers' pub/sub messages.
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const state = { queue: new URLSearchParams(location.search).get("queue") || "default",
                  jobs: new Map(), es: null };
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());
  const enc = encodeURIComponent;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function ago(ms) {
    if (!ms) return "–";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 1 ? "now" : duration(s) + " ago";
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // ---- jobs ----

  function jobCard(job) {
    const card = el("article", "job");
    card.dataset.jobId = job.id;
    const top = el("div", "top");
    const id = el("a", "id", job.id);
    id.href = "/jobs/" + enc(job.id) + "?queue=" + enc(state.queue);
    top.append(id, el("span", "status"), el("span", "meta"));
    const links = el("span", "links");
    const errors = el("a", "", "errors");
    errors.href = "/jobs/" + enc(job.id) + "/errors?queue=" + enc(state.queue);
    const results = el("a", "", "results");
    results.href = "/jobs/" + enc(job.id) + "/results?queue=" + enc(state.queue);
    links.append(errors, results);
    top.append(links);
    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.append(el("div", "fill"));
    card.append(top, bar, el("div", "counts"));
    return card;
  }

  function renderJob(job) {
    let card = state.jobs.get(job.id);
    if (!card) {
      card = jobCard(job);
      state.jobs.set(job.id, card);
      const list = $("#jobs");
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      list.prepend(card);
    }
    const pct = Math.max(0, Math.min(100, Number(job.progress_percent) || 0));
    card.className = "job " + job.status;
    const st = card.querySelector(".status");
    st.className = "status " + job.status;
    st.textContent = job.status;
    card.querySelector(".meta").textContent =
      [job.provider, job.priority === "high" ? "high priority" : "", job.dry_run ? "dry run" : "",
       job.created_at ? "created " + ago(job.created_at) : ""].filter(Boolean).join(" · ");
    const bar = card.querySelector(".bar");
    bar.setAttribute("aria-valuenow", String(pct));
    bar.title = pct + " %";
    card.querySelector(".fill").style.width = pct + "%";
    const counts = card.querySelector(".counts");
    counts.replaceChildren();
    const item = (label, value, cls) => {
      const s = el("span", cls || "");
      s.dataset.count = label.replace(" ", "_");
      s.append(el("b", "", fmt(value)), document.createTextNode(" " + label));
      counts.append(s);
    };
    item("processed", job.processed);
    counts.lastChild.append(document.createTextNode(" of " + fmt(job.total) + " (" + pct + " %)"));
    item("updated", job.updated);
    item("conflicts", job.conflicts);
    item("not found", job.not_found);
    item("errors", job.errors, "e");
    const rate = el("span", "muted", job.rate_per_s ? fmt(job.rate_per_s) + "/s" : "");
    const eta = el("span", "muted",
      job.status === "completed" ? "done" : job.eta_s !== null && job.eta_s !== undefined ? "ETA " + duration(job.eta_s) : "");
    counts.append(rate, eta);
    // the completion webhook, when the job has one (docs/webhooks.md)
    if (job.notify_status) {
      const n = job.notify_attempts || 0;
      const wh = el("span", job.notify_status === "failed" ? "e" : "muted",
        "webhook " + job.notify_status + (n ? " (" + n + (n === 1 ? " attempt)" : " attempts)") : ""));
      wh.dataset.count = "webhook";
      if (job.notify_error) wh.title = "last error: " + job.notify_error;
      counts.append(wh);
    }
  }

  async function loadJobs() {
    const body = await getJSON("/jobs?limit=25&queue=" + enc(state.queue));
    for (const job of body.jobs.slice().reverse()) renderJob(job);
  }

  // ---- queues and workers ----

  function cell(tr, text, numeric) {
    const td = el("td", numeric ? "n" : "", text);
    tr.append(td);
  }

  async function loadQueues() {
    const body = await getJSON("/queues");
    const tbody = $("#queues tbody");
    tbody.replaceChildren();
    const select = $("#queue");
    const names = body.queues.map((q) => q.name);
    if (!names.includes(state.queue)) names.push(state.queue);
    if (select.options.length !== names.length || [...select.options].some((o, i) => o.value !== names[i])) {
      select.replaceChildren(...names.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
      select.value = state.queue;
    }
    for (const q of body.queues) {
      const tr = el("tr");
      tr.dataset.queue = q.name;
      cell(tr, q.name);
      cell(tr, fmt(q.pending), 1);
      cell(tr, fmt(q.high_waiting), 1);
      cell(tr, fmt(q.processing), 1);
      cell(tr, fmt(q.leased), 1);
      cell(tr, fmt(q.dead), 1);
      cell(tr, fmt(q.jobs), 1);
      cell(tr, q.paused ? "paused" : "running");
      tbody.append(tr);
    }
    if (!body.queues.length) {
      const tr = el("tr");
      const td = el("td", "empty", "No queue has had a job yet.");
      td.colSpan = 8;
      tr.append(td);
      tbody.append(tr);
    }
  }

  async function loadWorkers() {
    const body = await getJSON("/workers");
    const tbody = $("#workers tbody");
    tbody.replaceChildren();
    $("#workers-count").textContent = body.alive + " alive of " + body.count;
    for (const w of body.workers) {
      const tr = el("tr", w.alive ? "" : "muted");
      cell(tr, w.id);
      cell(tr, w.host || "–");
      cell(tr, w.alive ? w.state || "–" : "gone");
      cell(tr, w.queues || "–");
      cell(tr, fmt(w.in_flight), 1);
      cell(tr, fmt(w.processed), 1);
      cell(tr, fmt(w.errors), 1);
      cell(tr, ago(w.last_seen));
      tbody.append(tr);
    }
    if (!body.workers.length) {
      const tr = el("tr");
      const td = el("td", "empty", "No worker has registered.");
      td.colSpan = 8;
      tr.append(td);
      tbody.append(tr);
    }
  }

  // ---- providers: each token bucket's rate, from /metrics ----

  // Reads the enrichfarm_ratelimit_* gauges of /metrics into
  // {provider: {metric suffix: value}}.
  function bucketsFromMetrics(text) {
    const out = {};
    const re = /^enrichfarm_ratelimit_([a-z_]+)\{provider="([^"]*)"\} (\S+)$/;
    for (const line of text.split("\n")) {
      const m = re.exec(line);
      if (!m) continue;
      (out[m[2]] = out[m[2]] || {})[m[1]] = Number(m[3]);
    }
    return out;
  }

  async function loadProviders() {
    const r = await fetch("/metrics");
    if (!r.ok) throw new Error(r.statusText);
    const buckets = bucketsFromMetrics(await r.text());
    const tbody = $("#providers tbody");
    tbody.replaceChildren();
    const now = Date.now() / 1000;
    for (const [name, b] of Object.entries(buckets).sort()) {
      const tr = el("tr");
      tr.dataset.provider = name;
      const ceiling = b.requests ? b.requests / (b.period_seconds || 1) : null;
      const learned = b.learned_timestamp_seconds > 0 && b.learned_requests_per_second > 0;
      cell(tr, name);
      cell(tr, b.requests_per_second !== undefined ? b.requests_per_second.toFixed(2) + "/s" : "–", 1);
      cell(tr, ceiling ? ceiling.toFixed(2) + "/s" : "none", 1);
      cell(tr, learned ? b.learned_requests_per_second.toFixed(2) + "/s" : "–", 1);
      cell(tr, fmt(b.cuts || 0), 1);
      cell(tr, b.paused_until_timestamp_seconds > now
        ? "paused " + duration(b.paused_until_timestamp_seconds - now) : "running");
      tbody.append(tr);
    }
    if (!tbody.children.length) {
      const tr = el("tr");
      const td = el("td", "empty", "No provider has a token bucket yet.");
      td.colSpan = 6;
      tr.append(td);
      tbody.append(tr);
    }
  }

  // ---- health and the live stream ----

  async function loadHealth() {
    const h = $("#health");
    try {
      const body = await getJSON("/health");
      h.className = "pill up";
      h.textContent = "redis up · " + (body.redis_rtt_us / 1000).toFixed(2) + " ms";
    } catch (e) {
      h.className = "pill down";
      h.textContent = "redis down";
    }
  }

  function connect() {
    if (state.es) state.es.close();
    const es = new EventSource("/events?queue=" + enc(state.queue));
    state.es = es;
    es.onopen = () => { $("#live").className = "pill on"; };
    es.onerror = () => { $("#live").className = "pill off"; };
    es.addEventListener("job", (ev) => {
      try { renderJob(JSON.parse(ev.data)); } catch (e) { /* a partial message: the next one repairs */ }
    });
    es.addEventListener("queue", () => { loadQueues().catch(() => {}); });
  }

  async function refresh() {
    await Promise.allSettled([loadHealth(), loadJobs(), loadQueues(), loadWorkers(),
      loadProviders()]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#queue").addEventListener("change", (e) => {
      state.queue = e.target.value;
      state.jobs.clear();
      $("#jobs").replaceChildren(el("p", "empty", "No jobs yet."));
      history.replaceState(null, "", "?queue=" + enc(state.queue));
      connect();
      refresh();
    });
    connect();
    refresh();
    setInterval(refresh, 4000);
  });
})();
