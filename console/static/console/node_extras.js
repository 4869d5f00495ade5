/* Node page: live CPU and memory charts (canvas, drawn here) and the task history with filters. */
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

  function draw(canvas, key, color) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 140;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const left = 34;
    const plotW = width - left - 4;
    const plotH = height - 18;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = css("--muted", "#656d76");
    ctx.strokeStyle = "rgba(127,127,127,0.25)";
    ctx.lineWidth = 1;
    for (const level of [0, 25, 50, 75, 100]) {
      const y = 4 + plotH - (level / 100) * plotH;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(width - 4, y);
      ctx.stroke();
      ctx.fillText(`${level}%`, 2, y + 4);
    }
    ctx.fillText("−10 min", left, height - 2);
    ctx.fillText("now", width - 26, height - 2);
    if (!points.length) {
      ctx.fillText("waiting for data…", left + 8, 20);
      return;
    }
    const start = Date.now() - WINDOW_MS;
    const x = (t) => left + Math.max(0, (t - start) / WINDOW_MS) * plotW;
    const y = (v) => 4 + plotH - (Math.max(0, Math.min(100, v)) / 100) * plotH;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(x(points[points.length - 1].t), 4 + plotH);
    ctx.lineTo(x(points[0].t), 4 + plotH);
    ctx.closePath();
    ctx.globalAlpha = 0.15;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  function render() {
    draw(document.getElementById("cpu-chart"), "cpu", "#0969da");
    draw(document.getElementById("mem-chart"), "mem", "#8250df");
    const last = points[points.length - 1];
    document.getElementById("cpu-now").textContent = last ? `${last.cpu.toFixed(0)}%` : "–";
    document.getElementById("mem-now").textContent = last ? `${last.mem.toFixed(0)}%` : "–";
    const panels = document.querySelector(".panels");
    panels.dataset.points = String(points.length);
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

  async function loadTasks(more = false) {
    const body = document.querySelector("#task-history tbody");
    const wanted = filters();
    const first = `${base}/tasks/` + (wanted.length ? `?status=${wanted.join(",")}` : "");
    let page;
    try {
      page = await api(more && nextPage ? nextPage : first);
    } catch (err) {
      document.getElementById("task-history-empty").textContent = `Could not load tasks: ${err.message}`;
      document.getElementById("task-history-empty").hidden = false;
      return;
    }
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
    loadStats();
    loadTasks();
    document.getElementById("task-filters").addEventListener("change", () => loadTasks(false));
    document.getElementById("task-more").addEventListener("click", () => loadTasks(true));
    window.addEventListener("resize", render);
  });
})();
