/* Agents: each agent's next fire time and last runs, run now / pause / resume, new agents.
   Run changes arrive on /ws/me/ (`agent.run`); a run that waits for approval links its chat. */
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const { el, api, apiAll, banner, Live, setLiveState } = Cortex;
  const list = document.getElementById("agent-list");
  const alerts = document.getElementById("approval-alerts");

  function when(value) {
    return value ? new Date(value).toLocaleString() : "—";
  }

  // "every 2 h 30 min", "every 1 min 30 s": the largest units that say the interval exactly.
  function every(seconds) {
    const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    const parts = [];
    let left = Math.round(seconds);
    for (const [name, size] of units) {
      if (left >= size) {
        parts.push(`${Math.floor(left / size)} ${name}`);
        left %= size;
      }
    }
    return `every ${parts.join(" ") || `${seconds} s`}`;
  }

  function triggerText(trigger) {
    if (trigger.kind === "interval") return every(trigger.seconds);
    if (trigger.kind === "cron") return `cron ${trigger.expression} (${trigger.timezone})`;
    return "manual";
  }

  const UNFINISHED = new Set(["scheduled", "running", "awaiting_approval"]);

  async function cancelRun(agent, run, button) {
    button.disabled = true;
    try {
      const body = await api(`/api/v1/agents/${agent.id}/runs/${run.id}/cancel/`, { method: "POST" });
      banner(
        body.status === "cancelled" ? `${agent.name}: run ${run.id} cancelled.` : `${agent.name}: run ${run.id} is stopping.`,
        "info",
      );
      await load();
    } catch (err) {
      button.disabled = false;
      banner(`${agent.name}: ${err.message}`);
    }
  }

  function runRow(agent, run) {
    const chat = run.session_id
      ? el("a", { href: `/console/sessions/${run.session_id}/`, class: "run-chat" }, "chat")
      : "—";
    let stop = "";
    if (UNFINISHED.has(run.status)) {
      const label = run.cancel_requested_at ? "Stopping…" : "Cancel";
      stop = el(
        "button",
        { type: "button", class: "secondary small cancel-run", "aria-label": `Cancel run ${run.id}` },
        label,
      );
      stop.disabled = Boolean(run.cancel_requested_at);
      stop.addEventListener("click", () => cancelRun(agent, run, stop));
    }
    return el(
      "tr",
      { "data-run-id": run.id },
      el("td", {}, el("span", { class: "badge", "data-status": run.status }, run.status)),
      el("td", {}, run.trigger),
      el("td", {}, when(run.scheduled_for)),
      el("td", { class: "score", title: run.feedback || null }, run.score === null ? "—" : `${run.score}/100`),
      el("td", {}, chat),
      el("td", {}, stop),
    );
  }

  async function act(agent, verb) {
    try {
      await api(`/api/v1/agents/${agent.id}/${verb}/`, { method: "POST" });
      banner(verb === "run" ? `${agent.name}: run queued.` : "", "info");
      await load();
    } catch (err) {
      banner(`${agent.name}: ${err.message}`);
    }
  }

  function card(agent) {
    const runs = agent.last_runs || [];
    const table = runs.length
      ? el(
          "div",
          { class: "table-wrap" },
          el(
            "table",
            { class: "table" },
            el(
              "thead",
              {},
              el("tr", {}, ...["Status", "Trigger", "Scheduled", "Score", "Chat", "Actions"].map((h) => el("th", { scope: "col" }, h))),
            ),
            el("tbody", {}, ...runs.map((run) => runRow(agent, run))),
          ),
        )
      : el("p", { class: "muted small" }, "No runs yet.");
    return el(
      "li",
      { class: "card agent", "data-agent-id": agent.id },
      el(
        "div",
        { class: "node-head" },
        el("h2", {}, agent.name, " ", agent.paused ? el("span", { class: "badge", "data-status": "offline" }, "paused") : null),
        el(
          "div",
          {},
          el("button", { type: "button", class: "run-now", onclick: () => act(agent, "run") }, "Run now"),
          " ",
          agent.paused
            ? el("button", { type: "button", class: "secondary resume", onclick: () => act(agent, "resume") }, "Resume")
            : el("button", { type: "button", class: "secondary pause", onclick: () => act(agent, "pause") }, "Pause"),
        ),
      ),
      el(
        "p",
        { class: "muted small schedule" },
        triggerText(agent.trigger),
        " · next: ",
        el("span", { class: "next-fire" }, agent.paused ? "paused" : when(agent.next_fire_at)),
        " · nodes: ",
        agent.node_ids.join(", ") || "none",
      ),
      table,
    );
  }

  // What /ws/me/ said about each waiting run (tool and node), for the alert's wording.
  const approvals = new Map();

  function showAlerts(agents) {
    const waiting = [];
    for (const agent of agents) {
      for (const run of agent.last_runs || []) {
        if (run.status !== "awaiting_approval" || !run.session_id) continue;
        const detail = approvals.get(run.id);
        const what = detail ? ` wants to run ${detail.tool} on ${detail.node_id || "the hub"}` : "";
        waiting.push(
          el(
            "p",
            { class: "hint", "data-run-id": run.id },
            `${agent.name}: run ${run.id}${what} and waits for your approval: `,
            el("a", { href: `/console/sessions/${run.session_id}/` }, "open its chat"),
          ),
        );
      }
    }
    alerts.replaceChildren(...waiting);
  }

  async function load() {
    try {
      const agents = await apiAll("/api/v1/agents/", 200);
      document.getElementById("no-agents").hidden = agents.length > 0;
      list.replaceChildren(...agents.map(card));
      showAlerts(agents);
    } catch (err) {
      banner(`Could not load agents: ${err.message}`);
    }
  }

  async function loadNodes() {
    const select = document.getElementById("agent-nodes");
    try {
      const nodes = await apiAll("/api/v1/nodes/", 500);
      select.replaceChildren(...nodes.map((n) => el("option", { value: n.node_id }, n.display_name || n.node_id)));
    } catch (err) {
      banner(`Could not load nodes: ${err.message}`);
    }
  }

  document.getElementById("agent-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const status = document.getElementById("agent-form-status");
    const kind = form.trigger.value;
    const trigger = { kind };
    if (kind === "interval") trigger.seconds = Number(form.seconds.value);
    if (kind === "cron") Object.assign(trigger, { expression: form.expression.value, timezone: form.timezone.value });
    const body = {
      name: form.name.value,
      prompt: form.prompt.value,
      trigger,
      node_ids: Array.from(form.node_ids.selectedOptions).map((o) => o.value),
    };
    if (form.rubric.value.trim()) body.rubric = form.rubric.value;
    try {
      const created = await api("/api/v1/agents/", { method: "POST", body });
      status.textContent = "Created.";
      document.getElementById("agent-secret-value").textContent = created.webhook_secret;
      document.getElementById("agent-secret").hidden = false;
      await load();
    } catch (err) {
      const fields = err.fields ? " " + Object.entries(err.fields).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ") : "";
      status.textContent = `Not created: ${err.message}${fields}`;
    }
  });

  function onFrame(frame) {
    if (frame.type !== "agent.run") return;
    if (frame.approval) approvals.set(frame.run_id, frame.approval);
    load();
  }

  new Live("/ws/me/", { onFrame, onState: setLiveState });
  await Promise.all([load(), loadNodes()]);
});
