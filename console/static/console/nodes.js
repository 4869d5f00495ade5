/* Node list: live status and small CPU / memory charts over the last hour. */
"use strict";

(() => {
  const { el, api, Live, setLiveState } = Cortex;
  const WINDOW_MS = 3600 * 1000;
  const MAX_POINTS = 1800; // at most one point per 2 s over the hour, whatever the heartbeat rate
  const cards = new Map(); // node_id -> {card, points, charts, status, meta}

  function trim(points) {
    const since = Date.now() - WINDOW_MS;
    while (points.length && points[0].t < since) points.shift();
    while (points.length > MAX_POINTS) points.shift();
  }

  function addPoint(entry, t, stats) {
    if (!stats || typeof stats.cpu_percent !== "number") return;
    // The newest point always moves; one point is kept per 2 s before it (bounded by MAX_POINTS).
    const kept = entry.points[entry.points.length - 2];
    const point = { t, cpu: stats.cpu_percent, mem: Number(stats.memory_percent) || 0 };
    if (kept && t - kept.t < 2000) entry.points[entry.points.length - 1] = point;
    else entry.points.push(point);
    trim(entry.points);
  }

  function draw(canvas, points, key, color) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 240;
    const height = canvas.clientHeight || 60;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "rgba(127,127,127,0.25)";
    ctx.lineWidth = 1;
    for (const level of [25, 50, 75]) {
      const y = height - (level / 100) * height;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
      ctx.stroke();
    }
    if (!points.length) return;
    const start = Date.now() - WINDOW_MS;
    const x = (t) => ((t - start) / WINDOW_MS) * width;
    const y = (v) => height - (Math.max(0, Math.min(100, v)) / 100) * (height - 2) - 1;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(x(points[points.length - 1].t), height);
    ctx.lineTo(x(points[0].t), height);
    ctx.closePath();
    ctx.fillStyle = color.replace("rgb(", "rgba(").replace(")", ",0.15)");
    ctx.fill();
    const last = points[points.length - 1];
    ctx.beginPath();
    ctx.arc(Math.min(x(last.t), width - 3), y(last[key]), 2.5, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
  }

  function render(entry) {
    const last = entry.points[entry.points.length - 1];
    entry.cpuLabel.textContent = last ? `CPU ${last.cpu.toFixed(0)}%` : "CPU –";
    entry.memLabel.textContent = last ? `Memory ${last.mem.toFixed(0)}%` : "Memory –";
    entry.card.dataset.points = String(entry.points.length);
    draw(entry.cpu, entry.points, "cpu", "rgb(56,139,253)");
    draw(entry.mem, entry.points, "mem", "rgb(163,113,247)");
  }

  function setStatus(entry, node) {
    entry.status.textContent = node.status;
    entry.status.dataset.status = node.status;
    entry.meta.textContent =
      node.status === "offline"
        ? `offline${node.offline_reason ? " · " + node.offline_reason.replace(/_/g, " ") : ""}`
        : node.last_seen_at
          ? "seen " + new Date(node.last_seen_at).toLocaleTimeString()
          : "";
  }

  async function addNode(node) {
    if (cards.has(node.node_id)) return;
    const grid = document.getElementById("node-grid");
    const entry = {
      points: [],
      status: el("span", { class: "badge" }),
      meta: el("span", { class: "muted small" }),
      cpu: el("canvas", { class: "chart", "aria-label": "CPU over the last hour" }),
      mem: el("canvas", { class: "chart", "aria-label": "Memory over the last hour" }),
      cpuLabel: el("div", { class: "chart-label" }),
      memLabel: el("div", { class: "chart-label" }),
    };
    entry.card = el(
      "article",
      { class: "card node-card", "data-node-id": node.node_id },
      el(
        "h2",
        {},
        el("a", { href: `/console/nodes/${encodeURIComponent(node.node_id)}/` }, node.display_name || node.node_id),
        " ",
        entry.status,
      ),
      el("div", { class: "muted small" }, node.node_id, " · ", entry.meta),
      entry.cpuLabel,
      entry.cpu,
      entry.memLabel,
      entry.mem,
    );
    cards.set(node.node_id, entry);
    grid.append(entry.card);
    document.getElementById("no-nodes").hidden = true;
    setStatus(entry, node);
    try {
      const history = await api(`/api/v1/nodes/${encodeURIComponent(node.node_id)}/stats/`);
      const older = history.samples.map((s) => ({ t: Date.parse(s.at), cpu: s.cpu_percent, mem: s.memory_percent }));
      entry.points = older.concat(entry.points).sort((a, b) => a.t - b.t);
      trim(entry.points);
    } catch (err) {
      /* history is a nicety: live points still arrive */
    }
    if (node.status !== "offline") addPoint(entry, Date.now(), node.stats);
    render(entry);
  }

  function removeNode(nodeId) {
    const entry = cards.get(nodeId);
    if (!entry) return;
    entry.card.remove();
    cards.delete(nodeId);
    document.getElementById("no-nodes").hidden = cards.size > 0;
  }

  function onFrame(frame, live) {
    switch (frame.type) {
      case "nodes.snapshot": {
        const seen = new Set(frame.nodes.map((n) => n.node_id));
        for (const nodeId of [...cards.keys()]) if (!seen.has(nodeId)) removeNode(nodeId);
        for (const node of frame.nodes) {
          if (cards.has(node.node_id)) setStatus(cards.get(node.node_id), node);
          else addNode(node);
        }
        document.getElementById("no-nodes").hidden = frame.nodes.length > 0;
        break;
      }
      case "node.added":
        addNode(frame.node);
        break;
      case "node.removed":
        removeNode(frame.node_id);
        break;
      case "node.status": {
        const entry = cards.get(frame.node_id);
        if (entry) setStatus(entry, frame);
        break;
      }
      case "nodes.stats": {
        const now = Date.now();
        for (const item of frame.nodes || []) {
          const entry = cards.get(item.node_id);
          if (!entry) continue;
          entry.status.textContent = item.status;
          entry.status.dataset.status = item.status;
          addPoint(entry, now, item.stats);
          render(entry);
        }
        break;
      }
      case "resync":
        live.socket.close(); // reconnect: a fresh snapshot replaces what was missed
        break;
      default:
        break;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    new Live("/ws/me/", { onFrame, onState: setLiveState });
    setInterval(() => cards.forEach(render), 30000); // the window slides even without frames
    window.addEventListener("resize", () => cards.forEach(render));
  });
})();
