/* Session page: the shared workspace (source of truth, each node's sync state, the hub
   mirror's tree with download, upload and delete) through /api/v1/sessions/{id}/workspace/. */
"use strict";

(() => {
  const { el, api, formatBytes } = Cortex;
  const sessionId = document.body.dataset.sessionId;
  const base = `/api/v1/sessions/${encodeURIComponent(sessionId)}/workspace`;
  const $ = (id) => document.getElementById(id);
  let cwd = "";
  let source = "none";

  function status(text, kind = "") {
    $("ws-status").textContent = text;
    $("ws-status").dataset.kind = kind;
  }

  const query = (path) => `?path=${encodeURIComponent(path)}`;
  const join = (dir, name) => (dir ? `${dir}/${name}` : name);
  const parent = (dir) => (dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) : "");
  const basename = (path) => path.slice(path.lastIndexOf("/") + 1);

  function csrf() {
    const found = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return found ? decodeURIComponent(found.slice("csrftoken=".length)) : "";
  }

  function showNodes(nodes) {
    $("ws-nodes").replaceChildren(
      ...nodes.map((n) =>
        el("li", { "data-node": n.node_id, "data-state": n.state }, el("strong", {}, n.node_id), " ",
          el("span", { class: `ws-state ws-${n.state}` }, n.state.replace("_", " ")),
          n.pending ? ` (${n.pending} pending)` : ""),
      ),
    );
  }

  function row(entry) {
    const isDir = entry.kind === "directory";
    const name = basename(entry.path);
    const label = isDir
      ? el("button", { type: "button", class: "link", "data-action": "open", onclick: () => load(entry.path) }, `${name}/`)
      : el("span", {}, name);
    const actions = el("td", { class: "actions" });
    if (!isDir) {
      actions.append(el("a", { href: `${base}/file/${query(entry.path)}`, download: name, "data-action": "download" }, "Download"), " ");
    }
    actions.append(el("button", { type: "button", class: "secondary", "data-action": "delete", "aria-label": `Delete ${name}`, onclick: () => remove(entry) }, "Delete"));
    return el("tr", { "data-path": entry.path, "data-kind": entry.kind },
      el("td", {}, label),
      el("td", {}, formatBytes(entry.size)),
      el("td", {}, entry.modified_at ? new Date(entry.modified_at).toLocaleString() : ""),
      actions);
  }

  async function load(path) {
    try {
      const listing = await api(`${base}/files/${query(path)}`);
      cwd = path;
      $("ws-path").textContent = `/${cwd}`;
      $("ws-up").disabled = !cwd;
      $("ws-table").querySelector("tbody").replaceChildren(...listing.results.map(row));
      $("ws-empty").hidden = listing.results.length > 0;
      $("workspace").dataset.loaded = cwd || ".";
    } catch (err) {
      status(`Could not list the folder: ${err.message}`, "error");
    }
  }

  async function refresh() {
    try {
      const ws = await api(`${base}/`);
      source = ws.source;
      $("ws-source").value = ws.source;
      $("ws-folder").value = ws.path || "";
      if (ws.node_id) $("ws-node").value = ws.node_id;
      showForm();
      showNodes(ws.nodes);
      $("ws-body").hidden = ws.source === "none";
      $("workspace").dataset.source = ws.source;
    } catch (err) {
      status(`Could not read the workspace: ${err.message}`, "error");
    }
  }

  function showForm() {
    const node = $("ws-source").value === "node";
    $("ws-node-label").hidden = !node;
    $("ws-folder-label").hidden = !node;
  }

  async function configure(event) {
    event.preventDefault();
    const body = { source: $("ws-source").value };
    if (body.source === "node") {
      body.node_id = $("ws-node").value;
      body.path = $("ws-folder").value;
    }
    try {
      await api(`${base}/`, { method: "PATCH", body });
      status(`The workspace source is ${body.source}.`, "ok");
      await refresh();
      if (source !== "none") await load("");
    } catch (err) {
      status(`Could not change the workspace: ${err.message}`, "error");
    }
  }

  async function remove(entry) {
    const name = basename(entry.path);
    if (!window.confirm(`Delete ${entry.path} from the workspace?`)) return;
    try {
      await api(`${base}/file/${query(entry.path)}`, { method: "DELETE" });
      await load(cwd);
      status(`Deleted ${name}.`, "ok");
    } catch (err) {
      status(`Could not delete ${name}: ${err.message}`, "error");
    }
  }

  async function upload(event) {
    event.preventDefault();
    const input = $("ws-upload-input");
    const file = input.files && input.files[0];
    if (!file) {
      status("Pick a file to upload first.", "error");
      return;
    }
    status(`Uploading ${file.name}…`);
    try {
      const response = await fetch(`${base}/file/${query(join(cwd, file.name))}`, {
        method: "PUT",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf(), "Content-Type": "application/octet-stream" },
        body: file,
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
      input.value = "";
      await load(cwd);
      status(`Uploaded ${file.name}.`, "ok");
    } catch (err) {
      status(`Could not upload ${file.name}: ${err.message}`, "error");
    }
  }

  async function nodeChoices() {
    try {
      const attached = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/nodes/`);
      const items = Array.isArray(attached) ? attached : attached.results;
      $("ws-node").replaceChildren(...items.map((a) => el("option", { value: a.node_id }, a.node_id)));
    } catch (err) {
      status(`Could not list the attached nodes: ${err.message}`, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("ws-config").addEventListener("submit", configure);
    $("ws-source").addEventListener("change", () => {
      showForm();
      if ($("ws-source").value === "node") nodeChoices();
    });
    $("ws-upload").addEventListener("submit", upload);
    $("ws-up").addEventListener("click", () => load(parent(cwd)));
    $("ws-refresh").addEventListener("click", () => load(cwd));
    await refresh();
    if (source === "node") await nodeChoices();
    if (source !== "none") await load("");
    // Sync state changes on its own: poll it while the page is visible.
    setInterval(() => {
      if (!document.hidden) refresh();
    }, 3000);
  });
})();
