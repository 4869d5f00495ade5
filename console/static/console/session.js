/* Chat page: streaming replies, tool calls with their live node output, approvals. */
"use strict";

(() => {
  const { el, api, apiAll, Live, banner, setLiveState, ansiState, appendAnsi } = Cortex;
  const sessionId = document.body.dataset.sessionId;
  const base = `/api/v1/sessions/${sessionId}`;
  const blocks = new Map(); // message id -> {root, text}
  const calls = new Map(); // tool_call_id -> {root, output, status, taskIds:Set}
  const taskCalls = new Map(); // task id -> call entry (or null while unknown)
  const taskSeq = new Map(); // task id -> last output seq shown
  const nodeSockets = new Map(); // node_id -> Live
  const pendingApprovals = new Set();
  let lastSeq = 0;

  function messageBlock(id, role) {
    let entry = blocks.get(id);
    if (entry) return entry;
    const text = el("div", { class: "text" });
    const root = el("div", { class: `msg ${role}`, "data-message-id": id }, el("div", { class: "role" }, role === "user" ? "You" : "Assistant"), text);
    entry = { root, text, role, tools: el("div", { class: "tools" }) };
    root.append(entry.tools);
    blocks.set(id, entry);
    // Keep the chat in message order whatever order the frames and pages arrive in.
    const chat = document.getElementById("chat");
    const after = [...chat.children].find((child) => Number(child.dataset.messageId) > id);
    chat.insertBefore(root, after || null);
    return entry;
  }

  function scroll() {
    const chat = document.getElementById("chat");
    chat.scrollTop = chat.scrollHeight;
  }

  function callBlock(frame) {
    let entry = calls.get(frame.tool_call_id);
    if (entry) return entry;
    const message = messageBlock(frame.message_id, "assistant");
    const status = el("span", { class: "badge", "data-status": "running" }, "running");
    const output = el("pre", { class: "output" });
    const args = el("code", { class: "args" }, JSON.stringify(frame.arguments));
    const actions = el("div", { class: "approval", hidden: true });
    entry = {
      root: el("div", { class: "tool-call", "data-tool-call-id": frame.tool_call_id },
        el("div", { class: "tool-head" }, el("span", { class: "muted small" }, "tool "), el("strong", {}, frame.tool), frame.node_id ? ` on ${frame.node_id} ` : " ", status),
        args, actions, output),
      output, status, actions, ansi: ansiState(), nodeId: frame.node_id, taskIds: new Set(),
    };
    calls.set(frame.tool_call_id, entry);
    message.tools.append(entry.root);
    if (frame.node_id) watchNode(frame.node_id);
    return entry;
  }

  function setCallStatus(entry, text, state) {
    entry.status.textContent = text;
    entry.status.dataset.status = state;
  }

  function writeTask(taskId, chunk) {
    const entry = taskCalls.get(taskId);
    if (!entry) return false;
    const last = taskSeq.get(taskId) || 0;
    if (chunk.seq <= last) return true;
    taskSeq.set(taskId, chunk.seq);
    appendAnsi(entry.output, chunk.data, entry.ansi);
    scroll();
    return true;
  }

  async function fetchTaskOutput(taskId) {
    for (let round = 0; round < 20; round += 1) {
      const page = await api(`/api/v1/tasks/${taskId}/output/?after_seq=${taskSeq.get(taskId) || 0}`);
      for (const chunk of page.chunks) writeTask(taskId, chunk);
      if (!page.chunks.length || (taskSeq.get(taskId) || 0) >= page.last_seq) return;
    }
  }

  /** A task seen on a node socket: find out whether it belongs to one of this chat's calls. */
  async function learnTask(taskId) {
    if (taskCalls.has(taskId)) return taskCalls.get(taskId);
    taskCalls.set(taskId, null);
    try {
      const task = await api(`/api/v1/tasks/${taskId}/`);
      const entry = String(task.chat_session_id) === String(sessionId) ? calls.get(task.tool_call_id) : null;
      if (entry) {
        taskCalls.set(taskId, entry);
        entry.taskIds.add(taskId);
        await fetchTaskOutput(taskId);
      }
      return entry;
    } catch (err) {
      return null;
    }
  }

  function watchNode(nodeId) {
    if (nodeSockets.has(nodeId)) return;
    nodeSockets.set(nodeId, new Live(`/ws/nodes/${encodeURIComponent(nodeId)}/`, {
      onFrame: (frame) => {
        if (frame.type === "task.started") learnTask(frame.task_id);
        else if (frame.type === "task.output") {
          if (!taskCalls.has(frame.task_id)) learnTask(frame.task_id);
          else if (taskCalls.get(frame.task_id)) {
            const last = taskSeq.get(frame.task_id) || 0;
            // A frame covers chunks first_seq..seq and may hold only their newest bytes.
            if ((frame.first_seq || frame.seq) > last + 1 || frame.skipped) {
              fetchTaskOutput(frame.task_id).catch(() => {});
            } else writeTask(frame.task_id, frame);
          }
        } else if (frame.type === "node.snapshot") {
          for (const task of frame.open_tasks) learnTask(task.task_id);
        }
      },
      onState: () => {},
    }));
  }

  function approvalButtons(frame) {
    const entry = callBlock(frame);
    const approve = el("button", { type: "button", class: "approve" }, "Approve");
    const deny = el("button", { type: "button", class: "deny secondary" }, "Deny");
    const note = el("span", { class: "muted small" }, frame.reason || "This call needs your approval.");
    entry.actions.replaceChildren(note, " ", approve, " ", deny);
    entry.actions.hidden = false;
    setCallStatus(entry, "waiting for approval", "waiting");
    const decide = async (verb) => {
      approve.disabled = true;
      deny.disabled = true;
      try {
        await api(`${base}/approvals/${frame.approval_id}/${verb}/`, { method: "POST" });
        entry.actions.replaceChildren(el("span", { class: "muted small" }, verb === "approve" ? "Approved." : "Denied."));
        setCallStatus(entry, verb === "approve" ? "approved" : "denied", verb === "approve" ? "running" : "failed");
      } catch (err) {
        entry.actions.replaceChildren(el("span", { class: "error" }, `Could not ${verb}: ${err.message}`));
      }
    };
    approve.addEventListener("click", () => decide("approve"));
    deny.addEventListener("click", () => decide("deny"));
  }

  function onFrame(frame) {
    if (typeof frame.seq === "number") lastSeq = Math.max(lastSeq, frame.seq);
    switch (frame.type) {
      case "message.delta": {
        const entry = messageBlock(frame.message_id, "assistant");
        entry.streamed = (entry.streamed || "") + frame.delta;
        entry.text.textContent = entry.streamed;
        scroll();
        break;
      }
      case "message.done": {
        const entry = messageBlock(frame.message_id, "assistant");
        if (frame.content) entry.text.textContent = frame.content;
        entry.root.dataset.status = frame.status;
        if (frame.error_code) entry.root.append(el("div", { class: "error small" }, frame.error_code));
        if (frame.final) setBusy(false);
        break;
      }
      case "tool.call":
        callBlock(frame);
        break;
      case "tool.approval_required":
        callBlock(frame);
        refreshApprovals().then(() => {
          if (pendingApprovals.has(frame.approval_id)) approvalButtons(frame);
          else {
            const entry = callBlock(frame);
            entry.actions.replaceChildren(el("span", { class: "muted small" }, "Approval was asked for and decided."));
            entry.actions.hidden = false;
          }
        });
        break;
      case "tool.result": {
        const entry = callBlock(frame);
        setCallStatus(entry, frame.ok ? "done" : `failed · ${frame.error_code}`, frame.ok ? "succeeded" : "failed");
        for (const taskId of frame.task_ids || []) {
          if (!taskCalls.get(taskId)) {
            taskCalls.set(taskId, entry);
            entry.taskIds.add(taskId);
            fetchTaskOutput(taskId).catch(() => {});
          }
        }
        if (!(frame.task_ids || []).length && frame.text && !entry.output.textContent) {
          entry.output.textContent = frame.text;
        }
        break;
      }
      case "error": {
        const message = frame.error ? `${frame.error.message} (${frame.error.code})` : "error";
        if (frame.message_id) messageBlock(frame.message_id, "assistant").root.append(el("div", { class: "error" }, message));
        else banner(message);
        break;
      }
      default:
        break;
    }
  }

  function setBusy(busy) {
    document.getElementById("send").disabled = busy;
    document.getElementById("stop").hidden = !busy;
  }

  async function loadHistory() {
    const messages = await apiAll(`${base}/messages/`, 2000);
    for (const m of messages) {
      if (m.role === "user") messageBlock(m.id, "user").text.textContent = m.content;
    }
    const running = messages.some((m) => m.role === "assistant" && ["pending", "streaming", "running", "waiting"].includes(m.status));
    setBusy(running);
    await refreshApprovals();
  }

  async function refreshApprovals() {
    try {
      const pending = await apiAll(`${base}/approvals/`, 200);
      pendingApprovals.clear();
      for (const a of pending) if (a.status === "pending" || a.status === undefined) pendingApprovals.add(a.id);
    } catch (err) {
      /* keep what we knew */
    }
  }

  async function loadNodes() {
    const attached = await apiAll(`${base}/nodes/`, 100);
    const holder = document.getElementById("attached");
    holder.replaceChildren(...attached.map((a) => el("span", { class: "badge", "data-status": a.status }, a.node_id)));
    for (const a of attached) watchNode(a.node_id);
    const mine = await apiAll("/api/v1/nodes/", 500);
    const select = document.getElementById("attach-node");
    const have = new Set(attached.map((a) => a.node_id));
    select.replaceChildren(el("option", { value: "" }, "attach a node…"), ...mine.filter((n) => !have.has(n.node_id)).map((n) => el("option", { value: n.node_id }, n.display_name || n.node_id)));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const session = await api(`${base}/`);
      document.getElementById("session-title").textContent = session.title || `Chat ${sessionId}`;
      await loadHistory();
      await loadNodes();
    } catch (err) {
      banner(err.status === 404 ? "No such chat." : `Could not load the chat: ${err.message}`);
      return;
    }
    new Live(`/ws/sessions/${sessionId}/`, { onFrame, onState: setLiveState, query: () => `?after_seq=${lastSeq}` });
    document.getElementById("attach-node").addEventListener("change", async (event) => {
      const nodeId = event.target.value;
      if (!nodeId) return;
      try {
        await api(`${base}/nodes/`, { method: "POST", body: { node_id: nodeId } });
        await loadNodes();
      } catch (err) {
        banner(`Could not attach ${nodeId}: ${err.message}`);
      }
    });
    document.getElementById("stop").addEventListener("click", () => api(`${base}/cancel/`, { method: "POST" }).catch(() => {}));
    document.getElementById("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = document.getElementById("chat-input");
      const content = input.value.trim();
      if (!content) return;
      document.getElementById("chat-error").hidden = true;
      setBusy(true);
      try {
        const posted = await api(`${base}/messages/`, { method: "POST", body: { content } });
        messageBlock(posted.user_message_id, "user").text.textContent = content;
        messageBlock(posted.assistant_message_id, "assistant");
        input.value = "";
        scroll();
      } catch (err) {
        setBusy(false);
        const node = document.getElementById("chat-error");
        node.textContent = `${err.message} (${err.code})`;
        node.hidden = false;
      }
    });
    document.getElementById("chat-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        document.getElementById("chat-form").requestSubmit();
      }
    });
  });
})();
