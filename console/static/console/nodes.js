/* Node list: live status and small CPU / memory charts (uPlot) over the last hour. */
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

  /** A small uPlot sparkline of one percentage over the last hour (no axes, no cursor). */
  function sparkline(holder, color, label) {
    const opts = {
      width: holder.clientWidth || 240,
      height: 56,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: { x: { time: true }, y: { auto: false, range: [0, 100] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { label, stroke: color, width: 1.5, fill: color + "26", points: { show: false } }],
    };
    return new uPlot(opts, [[], []], holder);
  }

  function render(entry) {
    const last = entry.points[entry.points.length - 1];
    entry.cpuLabel.textContent = last ? `CPU ${last.cpu.toFixed(0)}%` : "CPU –";
    entry.memLabel.textContent = last ? `Memory ${last.mem.toFixed(0)}%` : "Memory –";
    entry.card.dataset.points = String(entry.points.length);
    const now = Date.now() / 1000;
    const xs = entry.points.map((p) => p.t / 1000);
    for (const [chart, key] of [[entry.cpuChart, "cpu"], [entry.memChart, "mem"]]) {
      if (!chart) continue;
      chart.batch(() => {
        chart.setData([xs, entry.points.map((p) => Math.max(0, Math.min(100, p[key])))], false);
        chart.setScale("x", { min: now - WINDOW_MS / 1000, max: now });
      });
    }
  }

  function resize(entry) {
    for (const [chart, holder] of [[entry.cpuChart, entry.cpu], [entry.memChart, entry.mem]]) {
      if (chart) chart.setSize({ width: holder.clientWidth || 240, height: 56 });
    }
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
      cpu: el("div", { class: "chart", role: "img", "aria-label": "CPU over the last hour" }),
      mem: el("div", { class: "chart", role: "img", "aria-label": "Memory over the last hour" }),
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
    entry.cpuChart = sparkline(entry.cpu, "#388bfd", "CPU %");
    entry.memChart = sparkline(entry.mem, "#a371f7", "Memory %");
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
    entry.cpuChart.destroy();
    entry.memChart.destroy();
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
    window.addEventListener("resize", () => cards.forEach(resize));
  });
})();
