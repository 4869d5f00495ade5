/* Node page: a file browser of the node's workspace (list, download, upload, delete). Each
   action is one files task on the node, through /api/v1/nodes/{id}/workspace/ and /files/. */
"use strict";

(() => {
  const { el, api, formatBytes } = Cortex;
  const nodeId = document.body.dataset.nodeId;
  const base = `/api/v1/nodes/${encodeURIComponent(nodeId)}`;
  let cwd = "";
  let online = false;
  let loadedOnce = false;

  function status(text, kind = "") {
    const node = document.getElementById("files-status");
    node.textContent = text;
    node.dataset.kind = kind;
  }

  function query(path) {
    return path ? `?path=${encodeURIComponent(path)}` : "";
  }

  function join(dir, name) {
    return dir && dir !== "." ? `${dir.replace(/\/+$/, "")}/${name}` : name;
  }

  function parent(dir) {
    const cut = (dir || "").replace(/\/+$/, "").lastIndexOf("/");
    return cut > 0 ? dir.slice(0, cut) : "";
  }

  function row(entry) {
    const isDir = entry.type === "directory";
    const name = isDir
      ? el("button", { type: "button", class: "link", "data-action": "open", onclick: () => load(entry.path) }, `${entry.name}/`)
      : el("span", {}, entry.name);
    const actions = el("td", { class: "actions" });
    if (entry.type === "file") {
      actions.append(el("a", { href: `${base}/workspace/file/${query(entry.path)}`, download: entry.name, "data-action": "download" }, "Download"), " ");
    }
    actions.append(el("button", { type: "button", class: "secondary", "data-action": "delete", "aria-label": `Delete ${entry.name}`, onclick: () => remove(entry) }, "Delete"));
    return el(
      "tr",
      { "data-path": entry.path, "data-type": entry.type },
      el("td", {}, name),
      el("td", {}, isDir ? "–" : formatBytes(entry.size)),
      el("td", {}, entry.modified_at ? new Date(entry.modified_at).toLocaleString() : ""),
      actions,
    );
  }

  async function load(path) {
    status("Loading…");
    try {
      const listing = await api(`${base}/workspace/${query(path)}`);
      cwd = listing.path === "." ? "" : listing.path;
      document.getElementById("files-path").textContent = `/${cwd}`;
      document.getElementById("files-up").disabled = !cwd;
      const body = document.querySelector("#files-table tbody");
      body.replaceChildren(...listing.entries.map(row));
      document.getElementById("files-empty").hidden = listing.entries.length > 0;
      status(listing.truncated ? "Only the first entries are shown." : "", "ok");
      document.getElementById("files").dataset.loaded = cwd || ".";
    } catch (err) {
      status(`Could not list the folder: ${err.message}`, "error");
    }
  }

  async function remove(entry) {
    if (!window.confirm(`Delete ${entry.path} on ${nodeId}?`)) return;
    status(`Deleting ${entry.name}…`);
    try {
      await api(`${base}/workspace/file/${query(entry.path)}`, { method: "DELETE" });
      await load(cwd);
      status(`Deleted ${entry.name}.`, "ok");
    } catch (err) {
      status(`Could not delete ${entry.name}: ${err.message}`, "error");
    }
  }

  async function upload(event) {
    event.preventDefault();
    const input = document.getElementById("files-upload-input");
    const file = input.files && input.files[0];
    if (!file) {
      status("Pick a file to upload first.", "error");
      return;
    }
    const form = new FormData();
    form.append("path", join(cwd, file.name));
    form.append("file", file);
    status(`Uploading ${file.name}…`);
    try {
      const response = await fetch(`${base}/files/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf() },
        body: form,
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
      const task = await api(`/api/v1/tasks/${body.id}/?wait=60`);
      if (task.status !== "succeeded") throw new Error(task.error_message || `the upload ended ${task.status}`);
      input.value = "";
      await load(cwd);
      status(`Uploaded ${file.name}.`, "ok");
    } catch (err) {
      status(`Could not upload ${file.name}: ${err.message}`, "error");
    }
  }

  function csrf() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return found ? decodeURIComponent(found.slice("csrftoken=".length)) : "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("files-upload").addEventListener("submit", upload);
    document.getElementById("files-up").addEventListener("click", () => load(parent(cwd)));
    document.getElementById("files-refresh").addEventListener("click", () => load(cwd));
    // The node's socket (node.js) says when it is online: only then is there a workspace to
    // read (an offline node answers 409 node_offline, and nothing is queued for later).
    document.addEventListener("cortex:node-frame", (event) => {
      const frame = event.detail || {};
      const state = frame.type === "node.snapshot" ? (frame.node || {}).status : frame.type === "node.status" ? frame.status : null;
      if (!state) return;
      online = state === "online";
      document.getElementById("files").dataset.online = online ? "1" : "0";
      if (online && !loadedOnce) {
        loadedOnce = true;
        load("");
      } else if (!online) {
        status(`The node is ${state}: its files show when it is online.`);
      }
    });
  });
})();
