/* Shared helpers of the Cortex consoles: DOM building (text only), REST, WebSocket, ANSI. */
"use strict";

const Cortex = (() => {
  /** Build an element; children are nodes or strings (always inserted as text). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || "HTTP " + status);
      this.status = status;
      this.code = error.code || "http_" + status;
      this.fields = error.fields || null;
    }
  }

  /** JSON request against the hub's REST API with the session cookie and CSRF token. */
  async function api(path, options = {}) {
    const init = { method: options.method || "GET", credentials: "same-origin", headers: {} };
    if (init.method !== "GET") init.headers["X-CSRFToken"] = cookie("csrftoken");
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    if (response.status === 204) return null;
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new ApiError(response.status, body);
      if (error.code === "not_authenticated" && !options.noRedirect) toLogin();
      throw error;
    }
    return body;
  }

  /** Every item of a paginated list (bounded to `max` items). */
  async function apiAll(path, max = 1000) {
    const items = [];
    let next = path;
    while (next && items.length < max) {
      const page = await api(next);
      if (Array.isArray(page)) return page;
      items.push(...page.results);
      next = page.next ? new URL(page.next, location.href).pathname + new URL(page.next, location.href).search : null;
    }
    return items;
  }

  function toLogin() {
    location.assign("/console/login/?next=" + encodeURIComponent(location.pathname));
  }

  function banner(text, kind = "error") {
    const node = document.getElementById("banner");
    if (!node) return;
    node.hidden = !text;
    node.className = "banner " + kind;
    node.textContent = text || "";
  }

  /**
   * A WebSocket that reconnects with backoff. `onFrame(frame, socket)` gets each parsed frame;
   * close codes 4401 (signed out) send the page to sign-in, 4403 (no access) stop for good.
   */
  class Live {
    constructor(path, { onFrame, onState, query }) {
      this.path = path;
      this.onFrame = onFrame;
      this.onState = onState || (() => {});
      this.query = query || (() => "");
      this.delay = 500;
      this.stopped = false;
      this.seq = 0;
      this.open();
    }

    open() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + this.path + this.query());
      this.socket = socket;
      this.onState("connecting");
      socket.onopen = () => {
        this.delay = 500;
        this.onState("live");
      };
      socket.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        this.onFrame(frame, this);
      };
      socket.onclose = (event) => {
        if (this.socket !== socket || this.stopped) return;
        if (event.code === 4401) {
          this.onState("signed out");
          toLogin();
          return;
        }
        if (event.code === 4403) {
          this.stopped = true;
          this.onState("no access");
          banner("You no longer have access to this page's data.");
          return;
        }
        this.onState("reconnecting");
        setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      };
    }

    send(frame) {
      this.seq += 1;
      const body = Object.assign({ seq: this.seq }, frame);
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(body));
        return this.seq;
      }
      return null;
    }
  }

  function setLiveState(state) {
    const node = document.getElementById("live-state");
    if (!node) return;
    node.textContent = state;
    node.dataset.state = state;
  }

  /* --- ANSI: SGR colours become classes on spans; every other escape is dropped. --- */
  const CSI = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

  function ansiState() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  }

  function applySgr(state, params) {
    const codes = params === "" ? [0] : params.split(";").map((p) => parseInt(p || "0", 10));
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) Object.assign(state, ansiState());
      else if (code === 1) state.bold = true;
      else if (code === 2) state.dim = true;
      else if (code === 3) state.italic = true;
      else if (code === 4) state.underline = true;
      else if (code === 22) { state.bold = false; state.dim = false; }
      else if (code === 23) state.italic = false;
      else if (code === 24) state.underline = false;
      else if (code >= 30 && code <= 37) state.fg = code - 30;
      else if (code >= 90 && code <= 97) state.fg = code - 90 + 8;
      else if (code === 39) state.fg = null;
      else if (code >= 40 && code <= 47) state.bg = code - 40;
      else if (code >= 100 && code <= 107) state.bg = code - 100 + 8;
      else if (code === 49) state.bg = null;
      else if (code === 38 || code === 48) {
        // 256-colour and truecolour: skip their arguments, keep the default colour.
        i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0;
      }
    }
  }

  function classesOf(state) {
    const names = [];
    if (state.fg !== null) names.push("fg" + state.fg);
    if (state.bg !== null) names.push("bg" + state.bg);
    if (state.bold) names.push("b");
    if (state.dim) names.push("dim");
    if (state.italic) names.push("i");
    if (state.underline) names.push("u");
    return names.join(" ");
  }

  /** Append `text` to `target` as text-only spans, carrying colour state across chunks. */
  function appendAnsi(target, text, state) {
    let last = 0;
    const push = (piece) => {
      if (!piece) return;
      const cls = classesOf(state);
      if (cls) target.append(el("span", { class: cls }, piece));
      else target.append(document.createTextNode(piece));
    };
    CSI.lastIndex = 0;
    let match;
    while ((match = CSI.exec(text)) !== null) {
      push(text.slice(last, match.index));
      if (match[2] === "m") applySgr(state, match[1]);
      last = CSI.lastIndex;
    }
    push(text.slice(last));
  }

  function formatBytes(n) {
    if (!n) return "0 B";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function wireSignOut() {
    const button = document.getElementById("sign-out");
    if (!button) return;
    button.addEventListener("click", async () => {
      try {
        await api("/api/v1/auth/logout/", { method: "POST" });
      } finally {
        location.assign("/console/login/");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", wireSignOut);

  return { el, api, apiAll, ApiError, Live, banner, setLiveState, ansiState, appendAnsi, formatBytes, toLogin };
})();
