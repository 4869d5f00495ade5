/* Node page: an interactive terminal (xterm.js over /ws/nodes/{id}/terminal/) and replays of
   recorded sessions (asciicast v2 from the REST API). */
"use strict";

(() => {
  const { el, api, Live } = Cortex;
  const nodeId = document.body.dataset.nodeId;
  const base = `/api/v1/nodes/${encodeURIComponent(nodeId)}/terminals/`;
  const holder = document.getElementById("xterm");
  const status = document.getElementById("term-status");
  const openButton = document.getElementById("term-open");
  const closeButton = document.getElementById("term-close");
  const copyButton = document.getElementById("term-copy");
  const pasteButton = document.getElementById("term-paste");
  const empty = document.getElementById("term-empty");
  if (!holder) return;

  const theme = { background: "#0d1117", foreground: "#e6edf3", cursor: "#e6edf3" };
  let term = null;
  let fit = null;
  let live = null;
  let session = null;
  let lastSeq = 0;
  let listedLive = false;  // the recordings list was refreshed once the node started the shell

  function say(text, kind) {
    status.textContent = text;
    status.dataset.state = kind || "";
  }

  function makeTerminal(target) {
    const made = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000, theme,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace' });
    const fitter = new FitAddon.FitAddon();
    made.loadAddon(fitter);
    made.open(target);
    fitter.fit();
    return { made, fitter };
  }

  function send(frame) {
    if (live) live.send(frame);
  }

  function ensureTerminal() {
    // Shown only once a terminal is opened (before: the empty state, not a blank black box).
    holder.hidden = false;
    if (empty) empty.hidden = true;
    if (term) return;
    ({ made: term, fitter: fit } = makeTerminal(holder));
    term.onData((data) => send({ type: "terminal.input", data }));
    term.onResize(({ cols, rows }) => send({ type: "terminal.resize", cols, rows }));
    // Ctrl+Shift+C / Ctrl+Shift+V copy and paste (Ctrl+C stays an interrupt for the shell).
    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
      if (event.code === "KeyC") { copy(); return false; }
      if (event.code === "KeyV") { paste(); return false; }
      return true;
    });
    window.addEventListener("resize", () => fit && fit.fit());
  }

  async function copy() {
    const text = term ? term.getSelection() : "";
    if (text && navigator.clipboard) await navigator.clipboard.writeText(text).catch(() => {});
  }

  async function paste() {
    if (!term || !navigator.clipboard || !navigator.clipboard.readText) return;
    const text = await navigator.clipboard.readText().catch(() => "");
    if (text) term.paste(text);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "terminal.opened":
        session = frame.session;
        holder.dataset.session = session;
        closeButton.disabled = false;
        openButton.disabled = true;
        say("connected", "live");
        term.focus();
        loadRecordings();  // the new session is listed while it runs
        break;
      case "terminal.output":
        if (frame.seq > lastSeq) {
          lastSeq = frame.seq;
          term.write(frame.data);
        }
        if (!listedLive) {  // output: the node runs the shell now (the list says running)
          listedLive = true;
          loadRecordings();
        }
        break;
      case "terminal.exit":
        say(frame.error ? `ended: ${frame.error}` : `ended (exit ${frame.code})`, "ended");
        stop();
        loadRecordings();
        break;
      case "resync":  // fell behind: attach again from the last seq written
        if (live && live.socket) live.socket.close();
        break;
      case "error":
        say(frame.error.message, "error");
        if (!session) stop();
        break;
      default:
        break;
    }
  }

  function onState(state) {
    if (state !== "live") {
      if (session) say(state, "reconnecting");
      return;
    }
    if (session) send({ type: "terminal.attach", session, after_seq: lastSeq });
    else send({ type: "terminal.open", cols: term.cols, rows: term.rows });
  }

  function start() {
    ensureTerminal();
    fit.fit();
    term.reset();
    session = null;
    lastSeq = 0;
    listedLive = false;
    say("opening…", "opening");
    openButton.disabled = true;
    live = new Live(`/ws/nodes/${encodeURIComponent(nodeId)}/terminal/`, { onFrame, onState });
  }

  function stop() {
    if (live) {
      live.stopped = true;
      if (live.socket) live.socket.close();
    }
    live = null;
    session = null;
    openButton.disabled = false;
    closeButton.disabled = true;
  }

  openButton.addEventListener("click", start);
  closeButton.addEventListener("click", () => send({ type: "terminal.close" }));
  copyButton.addEventListener("click", copy);
  pasteButton.addEventListener("click", paste);

  /* --- recordings --- */
  const table = document.querySelector("#term-recordings tbody");
  const replayHolder = document.getElementById("term-replay");
  let replay = null;
  let replayTimer = null;

  async function loadRecordings() {
    let page;
    try {
      page = await api(base);
    } catch (err) {
      return;
    }
    table.replaceChildren(...page.results.map((row) => {
      const cast = `${base}${encodeURIComponent(row.id)}/cast`;
      return el("tr", {},
        el("td", {}, new Date(row.created_at).toLocaleString()),
        el("td", {}, row.status + (row.exit_code === null ? "" : ` (${row.exit_code})`)),
        el("td", {}, Cortex.formatBytes ? Cortex.formatBytes(row.output_bytes) : String(row.output_bytes)),
        el("td", {},
          el("button", { type: "button", class: "secondary replay", "aria-label": `Replay session of ${row.created_at}`, onclick: () => play(cast) }, "Replay"),
          " ",
          el("a", { href: cast, download: `terminal-${row.id}.cast` }, "Download .cast")));
    }));
    document.getElementById("term-recordings-empty").hidden = page.results.length > 0;
  }

  async function play(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const lines = (await response.text()).split("\n").filter(Boolean);
    const header = JSON.parse(lines.shift());
    const events = lines.map((line) => JSON.parse(line)).filter((e) => e[1] === "o");
    if (replayTimer) clearTimeout(replayTimer);
    replayHolder.hidden = false;
    if (!replay) replay = makeTerminal(replayHolder).made;
    replay.reset();
    replay.resize(header.width || 80, header.height || 24);
    let index = 0;
    let clock = 0;
    const step = () => {
      // Gaps longer than a second play as one second.
      while (index < events.length) {
        const [at, , data] = events[index];
        const wait = Math.min(Math.max(at - clock, 0), 1);
        if (wait > 0.01) {
          clock += wait;
          replayTimer = setTimeout(step, wait * 1000);
          return;
        }
        clock = Math.max(clock, at);
        replay.write(data);
        index += 1;
      }
      replayHolder.dataset.done = "true";
    };
    replayHolder.dataset.done = "false";
    step();
  }

  loadRecordings();
})();
