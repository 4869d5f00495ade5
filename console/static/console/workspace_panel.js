/* Session page: the shared workspace (source of truth, each node's sync state and drift with
   keep / take buttons, the hub mirror's tree with download, upload and delete) through
   /api/v1/sessions/{id}/workspace/. */
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
          n.pending && n.state !== "drift" ? ` (${n.pending} pending)` : "",
          n.state === "drift" ? ` (${(n.drift || []).length} ${plural((n.drift || []).length, "difference")})` : ""),
      ),
    );
    showDrift(nodes.filter((n) => n.state === "drift"));
  }

  const plural = (count, word) => (count === 1 ? word : `${word}s`);
  // A drift block is rebuilt only when what it shows changed: the 3 s poll must not reset the
  // person's ticks or close an open diff.
  const driftShown = new Map();

  function showDrift(drifting) {
    const box = $("ws-drift");
    const wanted = new Set(drifting.map((n) => n.node_id));
    for (const [nodeId, shown] of driftShown) {
      if (!wanted.has(nodeId)) {
        shown.element.remove();
        driftShown.delete(nodeId);
      }
    }
    for (const n of drifting) {
      const key = JSON.stringify(n.drift || []);
      const shown = driftShown.get(n.node_id);
      if (shown && shown.key === key) continue;
      const element = driftBlock(n);
      if (shown) shown.element.replaceWith(element);
      else box.append(element);
      driftShown.set(n.node_id, { key, element });
    }
    box.hidden = drifting.length === 0;
  }

  const CHANGES = { modified: "changed on the node", added: "added on the node", deleted: "deleted on the node" };

  // A node's version can be taken when the hub holds its bytes (fetched) or it is a delete.
  const takeable = (entry) => entry.change === "deleted" || (entry.change && entry.fetched);

  function driftItem(entry) {
    const what = entry.error
      ? el("span", { class: "ws-drift-error" }, `could not sync: ${entry.error}`)
      : el("span", { class: "muted" }, CHANGES[entry.change] || entry.change);
    const size = entry.change && entry.change !== "deleted"
      ? ` · ${formatBytes(entry.size || 0)}${entry.mode & 0o100 ? " · executable" : ""}` : "";
    const box = takeable(entry)
      ? el("input", { type: "checkbox", checked: true, "data-path": entry.path, "aria-label": `Take the node's ${entry.path}` })
      : null;
    let detail = null;
    if (entry.diff === "" && entry.change === "modified") {
      detail = el("p", { class: "muted small" }, "Same content: only the executable bit differs.");
    } else if (entry.diff) {
      const label = entry.change === "added" ? "The node's new file" : "Diff (workspace → node)";
      detail = el("details", { class: "ws-diff" }, el("summary", {}, label), diffView(entry.diff));
    } else if (entry.change && entry.change !== "deleted" && !entry.fetched) {
      detail = el("p", { class: "muted small" }, "The node's bytes have not reached the hub (still arriving, or over 1 MiB): its version cannot be taken.");
    } else if (entry.fetched && entry.change === "modified") {
      detail = el("p", { class: "muted small" }, "Binary or large file: no text diff.");
    }
    return el("li", { "data-path": entry.path, "data-change": entry.change || "error" },
      el("label", { class: "ws-drift-path" }, box, el("code", {}, entry.path || "(workspace)")), " ", what, size, detail);
  }

  function diffView(text) {
    const lines = text.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    return el("pre", { class: "ws-diff-text" }, ...lines.map((line) => {
      const kind = line.startsWith("+++") || line.startsWith("---") ? "file"
        : line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "same";
      return el("span", { class: `ws-diff-${kind}` }, `${line}\n`);
    }));
  }

  function driftBlock(n) {
    const entries = n.drift || [];
    const canTake = entries.some(takeable);
    const block = el("div", { class: "ws-drift-node", "data-node": n.node_id });
    const keep = el("button", { type: "button", class: "secondary", "data-action": "keep",
      onclick: () => resolve(n.node_id, "keep", block) }, "Keep the workspace's version");
    const take = el("button", { type: "button", "data-action": "promote", disabled: !canTake,
      onclick: () => resolve(n.node_id, "promote", block) }, "Take the node's version");
    block.append(
      el("h3", {}, `Drift on ${n.node_id}`),
      el("p", { class: "muted small" },
        "These files differ on the node from the workspace's source. Keep the workspace's version " +
        "(the node is overwritten), or take the node's version of the ticked files (the workspace " +
        "and every node get it; unticked files get the workspace's version)."),
      el("ul", { class: "ws-drift-list" }, ...entries.map(driftItem)),
      el("div", { class: "actions" }, keep, take),
    );
    return block;
  }

  async function resolve(nodeId, action, block) {
    const body = { node_id: nodeId, action };
    if (action === "promote") {
      body.paths = [...block.querySelectorAll("input[type=checkbox][data-path]:checked")].map((b) => b.dataset.path);
      if (!body.paths.length) {
        status("Tick the files whose node version you want to take.", "error");
        return;
      }
    }
    for (const button of block.querySelectorAll("button")) button.disabled = true;
    try {
      await api(`${base}/resolve/`, { method: "POST", body });
      const done = action === "keep"
        ? `Kept the workspace's version; ${nodeId} is being brought back in line.`
        : `Took ${nodeId}'s version of ${body.paths.length} ${plural(body.paths.length, "file")}; every node follows.`;
      status(done, "ok");
      await refresh();
      if (source !== "none") await load(cwd);
    } catch (err) {
      status(`Could not resolve the drift on ${nodeId}: ${err.message}`, "error");
      for (const button of block.querySelectorAll("button")) button.disabled = false;
      await refresh();
    }
  }

  async function resync() {
    try {
      await api(`${base}/resync/`, { method: "POST" });
      status("Asked every node for its files again; differences show up as drift.", "ok");
      await refresh();
    } catch (err) {
      status(`Could not resync: ${err.message}`, "error");
    }
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
    $("ws-resync").addEventListener("click", resync);
    await refresh();
    if (source === "node") await nodeChoices();
    if (source !== "none") await load("");
    // Sync state changes on its own: poll it while the page is visible.
    setInterval(() => {
      if (!document.hidden) refresh();
    }, 3000);
  });
})();
