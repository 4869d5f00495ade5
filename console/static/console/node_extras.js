/* Node page: live CPU and memory charts (uPlot) and the task history with filters. */
"use strict";

(() => {
  const { el, api } = Cortex;
  const nodeId = document.body.dataset.nodeId;
  const base = `/api/v1/nodes/${encodeURIComponent(nodeId)}`;
  const WINDOW_MS = 10 * 60 * 1000;
  const MAX_POINTS = 600;
  let points = []; // {t, cpu, mem}
  let nextPage = null;

  /* --- charts --- */
  function addPoint(t, stats) {
    if (!stats || typeof stats.cpu_percent !== "number") return;
    const last = points[points.length - 1];
    const point = { t, cpu: stats.cpu_percent, mem: Number(stats.memory_percent) || 0 };
    if (last && t - last.t < 1000) points[points.length - 1] = point;
    else points.push(point);
    const since = Date.now() - WINDOW_MS;
    while (points.length && (points[0].t < since || points.length > MAX_POINTS)) points.shift();
  }

  function css(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  const charts = {}; // key -> uPlot

  /** A uPlot time series of one percentage over the last ten minutes. */
  function makeChart(holder, key, color, label) {
    const muted = css("--muted", "#656d76");
    const grid = { stroke: "rgba(127,127,127,0.25)", width: 1 };
    const opts = {
      width: holder.clientWidth || 300,
      height: 140,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { auto: false, range: [0, 100] } },
      axes: [
        { stroke: muted, grid, ticks: grid, size: 28 },
        { stroke: muted, grid, ticks: grid, size: 52, values: (u, ticks) => ticks.map((v) => `${v}%`) },
      ],
      series: [{}, { label, stroke: color, width: 1.5, fill: color + "26", points: { show: false } }],
    };
    charts[key] = new uPlot(opts, [[], []], holder);
  }

  function render() {
    const now = Date.now() / 1000;
    const xs = points.map((p) => p.t / 1000);
    for (const key of ["cpu", "mem"]) {
      const chart = charts[key];
      chart.batch(() => {
        chart.setData([xs, points.map((p) => Math.max(0, Math.min(100, p[key])))], false);
        chart.setScale("x", { min: now - WINDOW_MS / 1000, max: now });
      });
    }
    const last = points[points.length - 1];
    document.getElementById("cpu-now").textContent = last ? `${last.cpu.toFixed(0)}%` : "–";
    document.getElementById("mem-now").textContent = last ? `${last.mem.toFixed(0)}%` : "–";
    const panels = document.querySelector(".panels");
    panels.dataset.points = String(points.length);
  }

  function resize() {
    for (const [key, chart] of Object.entries(charts)) {
      const holder = document.getElementById(`${key}-chart`);
      chart.setSize({ width: holder.clientWidth || 300, height: 140 });
    }
  }

  async function loadStats() {
    try {
      const history = await api(`${base}/stats/`);
      const older = history.samples.map((s) => ({ t: Date.parse(s.at), cpu: s.cpu_percent, mem: s.memory_percent }));
      points = older.concat(points).sort((a, b) => a.t - b.t);
    } catch (err) {
      /* live points still arrive */
    }
    render();
  }

  /* --- task history --- */
  function filters() {
    return [...document.querySelectorAll("#task-filters input:checked")].map((i) => i.value);
  }

  function row(task) {
    const when = new Date(task.created_at);
    return el("tr", { "data-task-id": task.id, "data-status": task.status },
      el("td", { class: "when", title: when.toISOString() }, when.toLocaleString()),
      el("td", { class: "cmd" }, task.command || task.kind),
      el("td", {}, el("span", { class: "badge", "data-status": task.status }, task.status.replace("_", " "))),
      el("td", { class: "num" }, task.exit_code === null ? "" : String(task.exit_code)),
      el("td", {}, task.chat_session_id ? el("a", { href: `/console/sessions/${task.chat_session_id}/` }, "chat") : "you or API"));
  }

  // Each load is numbered: a slower answer to an older filter never replaces a newer one.
  let generation = 0;

  async function loadTasks(more = false) {
    const body = document.querySelector("#task-history tbody");
    const wanted = filters();
    const first = `${base}/tasks/` + (wanted.length ? `?status=${wanted.join(",")}` : "");
    const mine = ++generation;
    let page;
    try {
      page = await api(more && nextPage ? nextPage : first);
    } catch (err) {
      if (mine !== generation) return;
      document.getElementById("task-history-empty").textContent = `Could not load tasks: ${err.message}`;
      document.getElementById("task-history-empty").hidden = false;
      return;
    }
    if (mine !== generation) return;
    if (!more) body.replaceChildren();
    body.append(...page.results.map(row));
    nextPage = page.next ? new URL(page.next, location.href).pathname + new URL(page.next, location.href).search : null;
    document.getElementById("task-more").hidden = !nextPage;
    document.getElementById("task-history-empty").textContent = "No tasks match.";
    document.getElementById("task-history-empty").hidden = body.children.length > 0;
    document.getElementById("task-history").dataset.loaded = String(Date.now());
  }

  let reload = null;
  function soon() {
    clearTimeout(reload);
    reload = setTimeout(() => loadTasks(false), 400);
  }

  document.addEventListener("cortex:node-frame", (event) => {
    const frame = event.detail;
    if (frame.type === "node.stats") {
      addPoint(Date.now(), frame.stats || frame);
      render();
    } else if (frame.type === "node.snapshot" && frame.node) {
      addPoint(Date.now(), frame.node.stats);
      render();
    } else if (["task.accepted", "task.started", "task.finished"].includes(frame.type)) {
      soon();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    makeChart(document.getElementById("cpu-chart"), "cpu", "#0969da", "CPU %");
    makeChart(document.getElementById("mem-chart"), "mem", "#8250df", "Memory %");
    loadStats();
    loadTasks();
    document.getElementById("task-filters").addEventListener("change", () => loadTasks(false));
    document.getElementById("task-more").addEventListener("click", () => loadTasks(true));
    window.addEventListener("resize", resize);
  });
})();
