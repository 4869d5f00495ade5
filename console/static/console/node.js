/* Node page: live terminal-like output of the node's tasks and a command box. */
"use strict";

(() => {
  const { el, api, Live, banner, setLiveState, ansiState, appendAnsi, formatBytes } = Cortex;
  const nodeId = document.body.dataset.nodeId;
  const MAX_CHARS = 400000; // per task in the DOM; the full output stays on the hub
  const tasks = new Map(); // task_id -> block
  const pending = new Map(); // reply seq -> {command, timeout} (echoed when the task is accepted)
  let live = null;

  function statusText(task) {
    if (task.exit_code !== null && task.exit_code !== undefined) return `${task.status} · exit ${task.exit_code}`;
    return task.status;
  }

  function block(task) {
    let entry = tasks.get(task.task_id);
    if (entry) return entry;
    const output = el("pre", { class: "output" });
    const status = el("span", { class: "badge" });
    const cancel = el("button", { type: "button", class: "link cancel", hidden: true, text: "cancel" });
    entry = {
      id: task.task_id,
      lastSeq: 0,
      chars: 0,
      ansi: { stdout: ansiState(), stderr: ansiState() },
      output,
      status,
      cancel,
      fetching: null,
      root: el(
        "section",
        { class: "task", "data-task-id": task.task_id },
        el("div", { class: "task-head" }, el("span", { class: "prompt" }, "$ "), el("code", { class: "cmd" }, task.command || task.kind || "task"), " ", status, " ", cancel),
        output,
      ),
    };
    cancel.addEventListener("click", () => live && live.send({ type: "cancel", task_id: task.task_id }));
    tasks.set(task.task_id, entry);
    const terminal = document.getElementById("terminal");
    terminal.append(entry.root);
    setStatus(entry, task);
    return entry;
  }

  function setStatus(entry, task) {
    entry.status.textContent = statusText(task);
    entry.status.dataset.status = task.status;
    entry.cancel.hidden = !["queued", "dispatched", "running"].includes(task.status);
  }

  function write(entry, stream, data, seq, skipped) {
    if (seq <= entry.lastSeq) return;
    entry.lastSeq = seq;
    if (skipped) {
      // A flood: the live frame holds only the newest bytes of its chunks (all stored on the hub).
      const note = `\n[… ${formatBytes(skipped)} not shown live …]\n`;
      entry.output.append(el("span", { class: "muted skipped" }, note));
      entry.chars += note.length;
    }
    const target = stream === "stderr" ? el("span", { class: "stderr" }) : entry.output;
    appendAnsi(target, data, entry.ansi[stream] || entry.ansi.stdout);
    if (target !== entry.output) entry.output.append(target);
    entry.chars += data.length;
    while (entry.chars > MAX_CHARS && entry.output.firstChild) {
      entry.chars -= (entry.output.firstChild.textContent || "").length;
      entry.output.firstChild.remove();
    }
    const terminal = document.getElementById("terminal");
    terminal.scrollTop = terminal.scrollHeight;
  }

  /** Fetch stored output after what the block has (a gap, a reconnect, a resync). */
  function catchUp(entry) {
    if (entry.fetching) return entry.fetching;
    entry.fetching = (async () => {
      try {
        for (let round = 0; round < 50; round += 1) {
          const page = await api(`/api/v1/tasks/${entry.id}/output/?after_seq=${entry.lastSeq}`);
          for (const chunk of page.chunks) write(entry, chunk.stream, chunk.data, chunk.seq);
          if (page.dropped_bytes && !entry.droppedShown) {
            entry.droppedShown = true;
            entry.output.append(el("span", { class: "muted" }, `\n[${formatBytes(page.dropped_bytes)} of output dropped by the hub's cap]\n`));
          }
          if (!page.chunks.length || entry.lastSeq >= page.last_seq) break;
        }
      } catch (err) {
        /* the next frame or resync tries again */
      } finally {
        entry.fetching = null;
      }
    })();
    return entry.fetching;
  }

  function onSnapshot(frame) {
    const node = frame.node;
    document.getElementById("node-name").textContent = node.display_name || node.node_id;
    nodeStatus(node);
    document.getElementById("run-form").hidden = !frame.can_run;
    const byId = new Map();
    for (const task of frame.recent_tasks.slice().reverse()) byId.set(task.task_id, task);
    for (const task of frame.open_tasks) byId.set(task.task_id, task);
    for (const task of byId.values()) {
      if (task.kind === "files") continue; // file actions live in the Files panel and history
      const entry = block(task);
      setStatus(entry, task);
      if (task.last_seq > entry.lastSeq) catchUp(entry);
    }
  }

  function nodeStatus(node) {
    const badge = document.getElementById("node-status");
    badge.textContent = node.status;
    badge.dataset.status = node.status;
    const meta = [node.node_id];
    if (node.status === "offline" && node.offline_reason) meta.push(node.offline_reason.replace(/_/g, " "));
    if (node.stats && typeof node.stats.cpu_percent === "number") {
      meta.push(`CPU ${node.stats.cpu_percent.toFixed(0)}%`);
      meta.push(`memory ${Number(node.stats.memory_percent || 0).toFixed(0)}%`);
    }
    const agent = node.agent || {};
    if (agent.version) meta.push(`agent ${agent.version}`);
    if (agent.python) meta.push(agent.python);
    if (agent.os) meta.push(agent.os);
    document.getElementById("node-meta").textContent = meta.join(" · ");
  }

  function onFrame(frame) {
    // The charts and the task history (node_extras.js) follow the same socket.
    document.dispatchEvent(new CustomEvent("cortex:node-frame", { detail: frame }));
    switch (frame.type) {
      case "node.snapshot":
        onSnapshot(frame);
        break;
      case "node.status":
        nodeStatus(Object.assign({ node_id: nodeId }, frame));
        break;
      case "node.stats":
        nodeStatus(Object.assign({ node_id: nodeId }, frame));
        break;
      case "task.accepted": {
        const sent = pending.get(frame.reply_to);
        pending.delete(frame.reply_to);
        block({ task_id: frame.task_id, command: sent ? sent.command : "", status: frame.status });
        break;
      }
      case "task.started": {
        const entry = tasks.get(frame.task_id);
        if (entry) setStatus(entry, { status: "running" });
        // File actions (the Files panel's, a chat's) have no terminal output: the history lists them.
        else api(`/api/v1/tasks/${frame.task_id}/`).then((t) => t.kind === "files" || block({ task_id: t.id, command: t.command, status: t.status, kind: t.kind })).catch(() => {});
        break;
      }
      case "task.output": {
        let entry = tasks.get(frame.task_id);
        if (!entry) {
          entry = block({ task_id: frame.task_id, command: "", status: "running" });
          api(`/api/v1/tasks/${frame.task_id}/`).then((t) => {
            entry.root.querySelector(".cmd").textContent = t.command || t.kind;
          }).catch(() => {});
        }
        // A frame covers chunks first_seq..seq; anything before first_seq comes over REST.
        const first = frame.first_seq || frame.seq;
        if (first > entry.lastSeq + 1) {
          catchUp(entry).then(() => write(entry, frame.stream, frame.data, frame.seq, frame.skipped));
        } else {
          write(entry, frame.stream, frame.data, frame.seq, frame.skipped);
        }
        break;
      }
      case "task.finished": {
        const entry = tasks.get(frame.task_id);
        if (entry) {
          setStatus(entry, frame);
          catchUp(entry);
        }
        break;
      }
      case "task.cancel_requested": {
        const entry = tasks.get(frame.task_id);
        if (entry) setStatus(entry, { status: frame.status === "cancelled" ? "cancelled" : "cancelling" });
        break;
      }
      case "resync":
        tasks.forEach((entry) => catchUp(entry));
        break;
      case "error": {
        const sent = pending.get(frame.reply_to);
        pending.delete(frame.reply_to);
        if (sent && frame.error.code === "confirmation_required" && !sent.confirm) {
          askToConfirm(sent, frame.error.message);
          break;
        }
        showRunError(`${frame.error.message} (${frame.error.code})`);
        break;
      }
      default:
        break;
    }
  }

  function showRunError(text) {
    const node = document.getElementById("run-error");
    node.textContent = text;
    node.hidden = false;
  }

  /** Send a run frame; `confirm` only after the person said yes to this very command. */
  function run(command, timeout, confirm) {
    const frame = { type: "run", command, timeout };
    if (confirm) frame.confirm = true;
    const seq = live.send(frame);
    if (seq === null) {
      banner("Not connected; try again in a moment.");
      return false;
    }
    pending.set(seq, { command, timeout, confirm });
    return true;
  }

  /** The hub says the command is sensitive on this node: ask before sending it confirmed. */
  function askToConfirm(sent, message) {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-message").textContent = message;
    document.getElementById("confirm-command").textContent = sent.command;
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "run") run(sent.command, sent.timeout, true);
        else showRunError(`Not run: ${sent.command}`);
      },
      { once: true },
    );
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    live = new Live(`/ws/nodes/${encodeURIComponent(nodeId)}/`, { onFrame, onState: setLiveState });
    document.getElementById("run-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("command");
      const command = input.value.trim();
      if (!command) return;
      document.getElementById("run-error").hidden = true;
      const timeout = Number(document.getElementById("timeout").value) || 30;
      if (run(command, timeout, false)) input.value = "";
    });
  });
})();
