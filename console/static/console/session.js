/* Chat page: streaming Markdown replies, tool calls with live node output, approvals (once,
 * always, deny), the model picker, the approval policy, token usage and voice messages. */
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
  const approvalsById = new Map(); // approval id -> approval row (pending and decided)
  let lastSeq = 0;
  let attachedCount = 0;

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
    updateEmpty();
    return entry;
  }

  /** Assistant text as Markdown (marked, then DOMPurify; see markdown.js). */
  function setAssistantText(entry, text) {
    entry.markdown = text;
    if (text.length > 200000) entry.text.textContent = text;
    else entry.text.replaceChildren(CortexMarkdown.render(text));
    entry.text.classList.add("md");
  }

  function updateEmpty() {
    const empty = document.getElementById("chat-empty");
    empty.hidden = blocks.size > 0;
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

  /** A browser task's screenshot (stored on the hub) as an image under its tool call. */
  async function showScreenshot(entry, taskId) {
    if (entry.root.querySelector(`img[data-task-id="${taskId}"]`)) return;
    const task = await api(`/api/v1/tasks/${taskId}/`);
    const shot = task.result && task.result.screenshot;
    if (!shot || !shot.stored || entry.root.querySelector(`img[data-task-id="${taskId}"]`)) return;
    const src = `/api/v1/tasks/${encodeURIComponent(taskId)}/screenshot/`;
    const chat = document.getElementById("chat");
    const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
    const image = el("img", {
      class: "screenshot", "data-task-id": taskId, alt: `Screenshot of ${task.result.url || "the page"}`, src,
    });
    // Its height is known only once loaded: keep the newest message in view if it was.
    image.addEventListener("load", () => { if (atBottom) scroll(); });
    image.addEventListener("error", () => {
      link.replaceWith(el("p", { class: "muted small" }, "The screenshot is no longer stored."));
    });
    const link = el(
      "a",
      { class: "screenshot-link", href: src, target: "_blank", rel: "noopener", title: "Open the full-size screenshot" },
      image,
    );
    entry.root.append(link);
    if (atBottom) scroll();
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

  function formatTime(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  /** "Allowed by alice@example.com at 12:03" (or denied, or timed out). */
  function showDecision(entry, approval) {
    const verbs = { approved: "Allowed", denied: "Denied", timed_out: "Nobody answered in time", cancelled: "Cancelled" };
    const who = approval.decided_by ? ` by ${approval.decided_by}` : "";
    const when = approval.decided_at ? ` at ${formatTime(approval.decided_at)}` : "";
    const text = `${verbs[approval.status] || approval.status}${who}${when}.`;
    entry.actions.replaceChildren(el("span", { class: "muted small decision", "data-status": approval.status }, text));
    entry.actions.hidden = false;
  }

  function approvalButtons(frame) {
    const entry = callBlock(frame);
    const approval = approvalsById.get(frame.approval_id) || {};
    const suggested = approval.suggested_patterns;
    const once = el("button", { type: "button", class: "approve" }, "Allow once");
    const always = el("button", { type: "button", class: "always secondary", disabled: !suggested, title: suggested ? null : "Sensitive commands need a fresh approval every time." }, "Always allow…");
    const deny = el("button", { type: "button", class: "deny secondary" }, "Deny");
    const reason = frame.reason === "sensitive_command" ? "This command is sensitive on this node: it needs your approval every time." : "This call needs your approval.";
    const note = el("span", { class: "muted small" }, reason);
    const form = el("form", { class: "always-form", hidden: true });
    entry.actions.replaceChildren(note, el("div", { class: "approval-buttons" }, once, always, deny), form);
    entry.actions.hidden = false;
    setCallStatus(entry, "waiting for approval", "waiting");
    const buttons = [once, always, deny];
    const decide = async (verb, body) => {
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const decided = await api(`${base}/approvals/${frame.approval_id}/${verb}/`, { method: "POST", body });
        approvalsById.set(decided.id, decided);
        showDecision(entry, decided);
        if (body && body.remember) {
          entry.actions.append(el("span", { class: "muted small" }, ` Remembered ${body.remember === "me" ? "for all your chats" : "for this chat"}: ${decided.tool} ${(body.patterns || []).join(", ")} on ${decided.node_id}.`));
        }
        setCallStatus(entry, verb === "approve" ? "approved" : "denied", verb === "approve" ? "running" : "failed");
      } catch (err) {
        buttons.forEach((b) => { b.disabled = false; });
        if (!suggested) always.disabled = true;
        const shown = err.fields && err.fields.patterns ? err.fields.patterns.join(" ") : err.message;
        form.querySelector(".error")?.remove();
        (form.hidden ? entry.actions : form).append(el("p", { class: "error small" }, `Could not ${verb}: ${shown}`));
      }
    };
    once.addEventListener("click", () => decide("approve"));
    deny.addEventListener("click", () => decide("deny"));
    always.addEventListener("click", () => {
      const id = `rule-${frame.approval_id}`;
      const patterns = el("input", { type: "text", id: `${id}-patterns`, value: (suggested || []).join(", "), spellcheck: "false", autocomplete: "off" });
      const scopeSession = el("input", { type: "radio", name: `${id}-scope`, id: `${id}-session`, value: "session", checked: true });
      const scopeMe = el("input", { type: "radio", name: `${id}-scope`, id: `${id}-me`, value: "me" });
      form.replaceChildren(
        el("label", { for: `${id}-patterns` }, `Always allow ${frame.tool}${frame.node_id ? ` on ${frame.node_id}` : ""} for commands matching`),
        patterns,
        el("p", { class: "muted small" }, "Comma-separated, in the node policy's syntax: a command and its first words (git status) or a glob (make *). Every command in a line must match; commands the node denies or marks sensitive still ask."),
        el("fieldset", { class: "scope" }, el("legend", {}, "Remember"),
          el("label", { class: "inline", for: `${id}-session` }, scopeSession, " in this chat"),
          el("label", { class: "inline", for: `${id}-me` }, scopeMe, " in all my chats")),
        el("div", { class: "approval-buttons" },
          el("button", { type: "submit", class: "confirm-always" }, "Allow and remember"),
          el("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; always.focus(); } }, "Cancel")),
      );
      form.hidden = false;
      patterns.focus();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const patterns = form.querySelector("input[type=text]").value.split(",").map((p) => p.trim()).filter(Boolean);
      const remember = form.querySelector("input[type=radio]:checked").value;
      const body = { remember };
      if (patterns.length) body.patterns = patterns;
      decide("approve", body);
    });
  }

  function onFrame(frame) {
    if (typeof frame.seq === "number") lastSeq = Math.max(lastSeq, frame.seq);
    switch (frame.type) {
      case "message.delta": {
        const entry = messageBlock(frame.message_id, "assistant");
        entry.streamed = (entry.streamed || "") + frame.delta;
        setAssistantText(entry, entry.streamed);
        scroll();
        break;
      }
      case "message.done": {
        const entry = messageBlock(frame.message_id, "assistant");
        if (frame.content) setAssistantText(entry, frame.content);
        entry.root.dataset.status = frame.status;
        if (frame.error_code) entry.root.append(el("div", { class: "error small" }, frame.error_code));
        if (frame.content && frame.status === "done") addListen(entry, frame.message_id);
        if (frame.final) {
          setBusy(false);
          refreshUsage();
        }
        break;
      }
      case "tool.call":
        callBlock(frame);
        break;
      case "tool.approval_required":
        callBlock(frame);
        refreshApprovals().then(() => {
          if (pendingApprovals.has(frame.approval_id)) approvalButtons(frame);
          else if (approvalsById.has(frame.approval_id)) showDecision(callBlock(frame), approvalsById.get(frame.approval_id));
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
        if (frame.allowed_by_rule && !entry.root.querySelector(".by-rule")) {
          entry.actions.replaceChildren(el("span", { class: "muted small by-rule" }, "Allowed by one of your standing rules (Settings lists them)."));
          entry.actions.hidden = false;
        }
        for (const taskId of frame.task_ids || []) {
          if (!taskCalls.get(taskId)) {
            taskCalls.set(taskId, entry);
            entry.taskIds.add(taskId);
            fetchTaskOutput(taskId).catch(() => {});
          }
          if (frame.tool === "browser") showScreenshot(entry, taskId).catch(() => {});
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
      if (m.role !== "user") continue;
      const entry = messageBlock(m.id, "user");
      entry.text.textContent = m.content;
      if (m.has_audio) addRecording(entry, m.id);
    }
    const running = messages.some((m) => m.role === "assistant" && ["pending", "streaming", "running", "waiting"].includes(m.status));
    setBusy(running);
    await refreshApprovals();
  }

  async function refreshApprovals() {
    try {
      const all = await apiAll(`${base}/approvals/?status=all`, 500);
      pendingApprovals.clear();
      for (const a of all) {
        approvalsById.set(a.id, a);
        if (a.status === "pending") pendingApprovals.add(a.id);
      }
    } catch (err) {
      /* keep what we knew */
    }
  }

  async function loadNodes() {
    const attached = await apiAll(`${base}/nodes/`, 100);
    attachedCount = attached.length;
    const holder = document.getElementById("attached");
    holder.replaceChildren(...attached.map((a) => el("span", { class: "badge", "data-status": a.status }, a.node_id)));
    for (const a of attached) watchNode(a.node_id);
    const mine = await apiAll("/api/v1/nodes/", 500);
    const select = document.getElementById("attach-node");
    const have = new Set(attached.map((a) => a.node_id));
    select.replaceChildren(el("option", { value: "" }, "attach a node…"), ...mine.filter((n) => !have.has(n.node_id)).map((n) => el("option", { value: n.node_id }, n.display_name || n.node_id)));
    document.getElementById("chat-empty-nodes").hidden = !mine.length || attachedCount > 0;
    document.getElementById("chat-empty-none").hidden = mine.length > 0;
  }

  /* --- token usage --- */
  function showUsage(session) {
    const fmt = (n) => Number(n || 0).toLocaleString("en");
    const node = document.getElementById("usage");
    node.textContent = `Tokens: ${fmt(session.tokens_in)} in · ${fmt(session.tokens_out)} out · ${fmt(session.tokens_total)} total`;
    node.dataset.total = String(session.tokens_total || 0);
  }

  async function refreshUsage() {
    try {
      showUsage(await api(`${base}/`));
    } catch (err) {
      /* the next answer tries again */
    }
  }

  /* --- model picker and approval policy --- */
  async function loadModels() {
    let choices;
    try {
      choices = await api(`${base}/model-choices/`);
    } catch (err) {
      document.getElementById("model-note").textContent = `Models unavailable: ${err.message}`;
      return;
    }
    const note = document.getElementById("model-note");
    const select = document.getElementById("model-select");
    const input = document.getElementById("model-input");
    const limited = choices.allowed_models.length > 0;
    document.getElementById("model-select-label").hidden = !limited;
    document.getElementById("model-input-label").hidden = limited;
    const current = choices.session_model;
    if (limited) {
      const options = [el("option", { value: "" }, "default (your settings)")];
      for (const m of choices.allowed_models) options.push(el("option", { value: m }, m));
      select.replaceChildren(...options);
      select.value = choices.allowed_models.includes(current) ? current : "";
    } else {
      input.value = current;
      input.placeholder = choices.model ? `default: ${choices.model}` : "default";
      const list = new Set([choices.model, current].filter(Boolean));
      document.getElementById("model-list").replaceChildren(...[...list].map((m) => el("option", { value: m })));
    }
    const locked = choices.locked.model;
    select.disabled = Boolean(locked);
    input.disabled = Boolean(locked);
    const parts = [];
    if (choices.model) parts.push(`using ${choices.provider || "?"} · ${choices.model}`);
    if (locked) parts.push(`locked by ${locked}`);
    if (choices.error) parts.push(choices.error.message);
    if (!choices.model && !choices.error) {
      note.replaceChildren("No model configured: ", el("a", { href: "/console/settings/" }, "set one in Settings"), ".");
    } else note.textContent = parts.join(" · ");
  }

  async function patchSession(body, what) {
    try {
      const session = await api(`${base}/`, { method: "PATCH", body });
      banner("");
      return session;
    } catch (err) {
      banner(`Could not change the ${what}: ${err.message}`);
      return null;
    }
  }

  function wireSettings() {
    const setModel = async (value) => {
      await patchSession({ model: value.trim() }, "model");
      await loadModels();
    };
    document.getElementById("model-select").addEventListener("change", (event) => setModel(event.target.value));
    document.getElementById("model-input").addEventListener("change", (event) => setModel(event.target.value));
    const policy = document.getElementById("approval-policy");
    policy.addEventListener("change", async () => {
      const session = await patchSession({ approval_policy: policy.value }, "approval policy");
      if (session) policy.value = session.approval_policy;
    });
  }

  /* --- voice: recordings in, spoken answers out --- */
  function addRecording(entry, messageId) {
    if (entry.root.querySelector("audio.recording")) return;
    const audio = el("audio", { class: "recording", controls: true, preload: "none", src: `${base}/messages/${messageId}/audio/` });
    audio.setAttribute("aria-label", "Your recording");
    entry.text.after(audio);
  }

  let playing = null;
  function addListen(entry, messageId) {
    if (entry.root.querySelector("button.listen")) return;
    const button = el("button", { type: "button", class: "listen link small", "aria-label": "Listen to this answer" }, "▶ Listen");
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "… preparing";
      try {
        const response = await fetch(`${base}/messages/${messageId}/speech/?as_wav=true`, {
          method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() },
        });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
        }
        const url = URL.createObjectURL(await response.blob());
        if (playing) playing.pause();
        playing = new Audio(url);
        playing.dataset.messageId = String(messageId);
        playing.addEventListener("ended", () => { button.textContent = "▶ Listen"; URL.revokeObjectURL(url); });
        button.textContent = "♪ playing";
        entry.root.dataset.spoken = "1";
        await playing.play().catch(() => { button.textContent = "▶ Listen (blocked: click again)"; });
      } catch (err) {
        button.textContent = "▶ Listen";
        entry.root.append(el("div", { class: "error small" }, `Could not speak this answer: ${err.message}`));
      } finally {
        button.disabled = false;
      }
    });
    entry.text.after(button);
  }

  function csrf() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return found ? decodeURIComponent(found.slice(10)) : "";
  }

  function wireRecorder() {
    const button = document.getElementById("record");
    const state = document.getElementById("record-state");
    if (!window.MediaRecorder || !navigator.mediaDevices) {
      button.disabled = true;
      button.title = "This browser cannot record audio here.";
      return;
    }
    let recorder = null;
    let chunks = [];
    const say = (text) => { state.hidden = !text; state.textContent = text; };
    button.addEventListener("click", async () => {
      if (recorder && recorder.state === "recording") {
        recorder.stop();
        return;
      }
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (err) {
        say(`No microphone: ${err.message}`);
        return;
      }
      const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"].find((t) => MediaRecorder.isTypeSupported(t)) || "";
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      chunks = [];
      recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
      recorder.addEventListener("stop", async () => {
        stream.getTracks().forEach((t) => t.stop());
        button.textContent = "Record";
        button.setAttribute("aria-pressed", "false");
        button.classList.remove("recording");
        const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        await sendRecording(blob, say);
      });
      recorder.start();
      button.textContent = "Stop recording";
      button.setAttribute("aria-pressed", "true");
      button.classList.add("recording");
      say("Recording… click “Stop recording” to send.");
    });
  }

  async function sendRecording(blob, say) {
    say("Transcribing…");
    const form = new FormData();
    form.append("audio", blob, blob.type.includes("ogg") ? "voice.ogg" : "voice.webm");
    setBusy(true);
    try {
      const response = await fetch(`${base}/messages/`, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() }, body: form,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      const messages = await apiAll(`${base}/messages/`, 2000);
      const mine = messages.find((m) => m.id === body.user_message_id);
      const entry = messageBlock(body.user_message_id, "user");
      entry.text.textContent = mine ? mine.content : "";
      addRecording(entry, body.user_message_id);
      messageBlock(body.assistant_message_id, "assistant");
      say("");
      scroll();
    } catch (err) {
      setBusy(false);
      say(`Not sent: ${err.message}`);
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    // Wired before anything loads: the node menu fills in while the models still load, and a
    // choice made then must not be lost.
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
    try {
      const session = await api(`${base}/`);
      document.getElementById("session-title").textContent = session.title || `Chat ${sessionId}`;
      showUsage(session);
      document.getElementById("approval-policy").value = session.approval_policy;
      await loadHistory();
      await loadNodes();
      updateEmpty();
      await loadModels();
    } catch (err) {
      banner(err.status === 404 ? "No such chat." : `Could not load the chat: ${err.message}`);
      return;
    }
    new Live(`/ws/sessions/${sessionId}/`, { onFrame, onState: setLiveState, query: () => `?after_seq=${lastSeq}` });
    wireSettings();
    wireRecorder();
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
