/* Admin: register nodes (install command, bundle, invites, credential, grants, sandbox policy),
   system provider defaults (providers.js) and the audit log with filters. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { el, api, apiAll, banner } = Cortex;
  const { wireAll, errorText } = CortexProviders;
  const enc = encodeURIComponent;
  let groups = [];

  function status(node, text, kind) {
    node.textContent = text;
    node.dataset.kind = kind || "";
  }

  function lines(text) {
    return text.split("\n").map((l) => l.trim()).filter(Boolean);
  }

  function field(label, control) {
    return el("label", { for: control.id }, label, control);
  }

  /* --- nodes --- */
  const list = document.getElementById("node-list");

  function groupBoxes(container, prefix) {
    container.querySelectorAll("label").forEach((l) => l.remove());
    document.getElementById("no-groups").hidden = groups.length > 0;
    for (const group of groups) {
      const box = el("input", { type: "checkbox", value: group.id, id: `${prefix}-${group.id}` });
      container.append(el("label", { class: "inline", for: box.id }, box, " ", group.name));
    }
  }

  async function installCommand(nodeId, out) {
    status(out.state, "Making a link…");
    try {
      const link = await api(`/api/v1/nodes/${enc(nodeId)}/install-link/`, { method: "POST" });
      out.code.textContent = link.command;
      out.box.hidden = false;
      status(out.state, `Works once, until ${new Date(link.expires_at).toLocaleTimeString()}. Paste it in a terminal on the node.`, "ok");
    } catch (err) {
      status(out.state, `No link: ${errorText(err)}`, "error");
    }
  }

  function installBlock(nodeId) {
    const code = el("code", { class: "command", "data-install-command": nodeId });
    const copy = el("button", { type: "button", class: "secondary" }, "Copy");
    copy.setAttribute("aria-label", "Copy the install command");
    copy.addEventListener("click", () => navigator.clipboard.writeText(code.textContent).then(() => (copy.textContent = "Copied"), () => {}));
    const out = { code, box: el("div", { class: "copy-row" }, code, copy), state: el("p", { class: "status small", role: "status" }) };
    out.box.hidden = true;
    const make = el("button", { type: "button", "data-action": "install-link" }, "Install command");
    make.addEventListener("click", () => installCommand(nodeId, out));
    const bundle = el("a", { class: "button secondary", href: `/api/v1/nodes/${enc(nodeId)}/bundle/`, download: "" }, "Download bundle (zip)");
    return { element: el("div", { class: "subsection" }, el("h4", {}, "Install on a machine"),
      el("p", { class: "muted small" }, "One line to paste on the node (downloads the bundle into ~/cortex-node-" + nodeId + " and starts the agent), or the bundle to unpack and start with bash run.sh. Each gives a fresh invite; older unused ones stop working."),
      el("div", { class: "actions" }, make, bundle), out.box, out.state), out };
  }

  function credentialBlock(node) {
    const state = el("p", { class: "status small", role: "status" });
    const invite = el("button", { type: "button", class: "secondary", "data-action": "invite" }, "New invite token");
    invite.addEventListener("click", async () => {
      try {
        const made = await api(`/api/v1/nodes/${enc(node.node_id)}/invite/`, { method: "POST" });
        state.replaceChildren("Invite (shown once; put it in agent_config.yaml as invite_token): ", el("code", { class: "command" }, made.invite_token));
        state.dataset.kind = "ok";
      } catch (err) {
        status(state, `No invite: ${errorText(err)}`, "error");
      }
    });
    const rotate = el("button", { type: "button", class: "secondary", "data-action": "rotate" }, "Rotate credential");
    rotate.addEventListener("click", async () => {
      try {
        await api(`/api/v1/nodes/${enc(node.node_id)}/rotate-credential/`, { method: "POST" });
        status(state, "Rotation requested: the node gets a new credential over its connection; the old one works until it confirms.", "ok");
      } catch (err) {
        status(state, `Not rotated: ${errorText(err)}`, "error");
      }
    });
    const inviteState = node.invite ? `Invite: ${node.invite.state}` : "";
    return el("div", { class: "subsection" }, el("h4", {}, "Credentials"), el("p", { class: "muted small" }, inviteState),
      el("div", { class: "actions" }, invite, rotate), state);
  }

  function grantsBlock(node, refresh) {
    const granted = new Set((node.group_access || []).map((g) => g.group));
    const chips = el("div", { class: "chips" });
    for (const access of node.group_access || []) {
      const remove = el("button", { type: "button", "aria-label": `Remove group ${access.name}` }, "×");
      remove.addEventListener("click", async () => {
        try {
          await api(`/api/v1/nodes/${enc(node.node_id)}/access/${access.group}/`, { method: "DELETE" });
          refresh();
        } catch (err) {
          banner(`Could not remove the group: ${err.message}`);
        }
      });
      chips.append(el("span", { class: "chip", "data-group": access.name }, access.name, remove));
    }
    if (!granted.size) chips.append(el("span", { class: "muted small" }, "No group may use this node yet (admins always may)."));
    const select = el("select", { id: `grant-${node.node_id}` }, el("option", { value: "" }, "choose a group…"));
    for (const group of groups) if (!granted.has(group.id)) select.append(el("option", { value: group.id }, group.name));
    const add = el("button", { type: "button", class: "secondary", "data-action": "grant" }, "Add");
    add.addEventListener("click", async () => {
      if (!select.value) return;
      try {
        await api(`/api/v1/nodes/${enc(node.node_id)}/access/`, { method: "POST", body: { group: Number(select.value) } });
        refresh();
      } catch (err) {
        banner(`Could not add the group: ${err.message}`);
      }
    });
    return el("div", { class: "subsection" }, el("h4", {}, "Groups that may use it"), chips,
      el("div", { class: "row-form" }, field("Add a group", select), add));
  }

  function policyBlock(node) {
    const id = (name) => `policy-${node.node_id}-${name}`;
    const policy = node.sandbox_policy || {};
    const mode = el("select", { id: id("mode") },
      el("option", { value: "permissive" }, "permissive: anything not denied"),
      el("option", { value: "strict" }, "strict: only the allowed commands"));
    mode.value = policy.mode || "permissive";
    const area = (name) => {
      const t = el("textarea", { id: id(name), spellcheck: "false", rows: "6" });
      t.value = (policy[name] || []).join("\n");
      return t;
    };
    const allowed = area("allowed_commands");
    const denied = area("denied_commands");
    const sensitive = area("sensitive_commands");
    const terminals = el("select", { id: id("terminals") },
      el("option", { value: "" }, "the mode's default (permissive: yes, strict: no)"),
      el("option", { value: "true" }, "allowed"),
      el("option", { value: "false" }, "refused"));
    terminals.value = policy.allow_terminals === true ? "true" : policy.allow_terminals === false ? "false" : "";
    const draft = () => Object.assign(
      { mode: mode.value, allowed_commands: lines(allowed.value), denied_commands: lines(denied.value), sensitive_commands: lines(sensitive.value) },
      terminals.value ? { allow_terminals: terminals.value === "true" } : {});
    const state = el("span", { class: "status small", role: "status" });
    const save = el("button", { type: "submit", "data-action": "save-policy" }, "Save policy");
    const form = el("form", { class: "policy-form" },
      field("Mode", mode),
      field("Interactive terminals", terminals),
      el("div", { class: "policy-lists" }, field("Allowed (one per line)", allowed), field("Denied", denied), field("Sensitive: need approval", sensitive)),
      el("div", { class: "actions" }, save, state));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api(`/api/v1/nodes/${enc(node.node_id)}/`, { method: "PATCH", body: { sandbox_policy: draft() } });
        status(state, "Saved; the node gets it on its connection.", "ok");
      } catch (err) {
        status(state, `Not saved: ${errorText(err)}`, "error");
      }
    });
    const command = el("input", { type: "text", id: id("check"), spellcheck: "false", autocomplete: "off", placeholder: "e.g. rm -rf build && make" });
    const verdict = el("p", { class: "verdict", role: "status", hidden: true });
    const check = el("button", { type: "submit", class: "secondary", "data-action": "check" }, "Check");
    const checkForm = el("form", { class: "row-form" }, field("Check a command against this policy (as edited, not yet saved)", command), check);
    checkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const v = await api(`/api/v1/nodes/${enc(node.node_id)}/policy/check/`, { method: "POST", body: { command: command.value, policy: draft() } });
        verdict.dataset.allowed = String(v.allowed);
        verdict.dataset.sensitive = String(v.sensitive);
        const head = v.allowed ? (v.sensitive ? "Allowed after approval" : "Allowed") : "Refused";
        verdict.replaceChildren(el("strong", {}, head), ` — ${v.reason}`, v.commands.length ? el("span", { class: "muted small" }, ` (starts: ${v.commands.join(", ")})`) : "");
      } catch (err) {
        verdict.dataset.allowed = "false";
        verdict.textContent = errorText(err);
      }
      verdict.hidden = false;
    });
    return el("div", { class: "subsection" }, el("h4", {}, "Sandbox policy"),
      el("p", { class: "muted small" }, "Entries are command names, optionally with the words they must be followed by (git push); rules like @pipe_to_shell deny or flag whole classes. The node checks every command with the same checker."),
      form, checkForm, verdict);
  }

  async function fillNode(details, nodeId) {
    const body = details.querySelector(".node-body");
    try {
      const node = await api(`/api/v1/nodes/${enc(nodeId)}/`);
      const refresh = () => fillNode(details, nodeId);
      const install = installBlock(nodeId);
      body.replaceChildren(install.element, grantsBlock(node, refresh), credentialBlock(node), policyBlock(node));
      return install;
    } catch (err) {
      body.replaceChildren(el("p", { class: "error" }, `Could not load: ${err.message}`));
      return null;
    }
  }

  function nodeRow(node) {
    const details = el("details", { class: "card node-admin", "data-node-id": node.node_id });
    const badge = el("span", { class: "badge", "data-status": node.status }, node.status);
    details.append(
      el("summary", {}, el("h3", {}, node.display_name || node.node_id), badge, el("span", { class: "muted small" }, node.node_id),
        el("a", { href: `/console/nodes/${enc(node.node_id)}/`, class: "small" }, "open")),
      el("div", { class: "node-body" }, el("p", { class: "muted" }, "Loading…")),
    );
    details.addEventListener("toggle", () => {
      if (details.open && !details.dataset.loaded) {
        details.dataset.loaded = "1";
        fillNode(details, node.node_id);
      }
    });
    return details;
  }

  async function loadNodes() {
    const nodes = await apiAll("/api/v1/nodes/", 1000);
    list.replaceChildren(...nodes.map(nodeRow));
    document.getElementById("first-node").hidden = nodes.length > 0;
    return nodes;
  }

  document.getElementById("node-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = document.getElementById("node-create-status");
    const nodeId = document.getElementById("new-node-id").value.trim();
    const chosen = [...document.querySelectorAll("#new-node-groups input:checked")].map((b) => Number(b.value));
    try {
      await api("/api/v1/nodes/", { method: "POST", body: { node_id: nodeId, display_name: document.getElementById("new-node-name").value.trim() } });
      for (const group of chosen) await api(`/api/v1/nodes/${enc(nodeId)}/access/`, { method: "POST", body: { group } });
      event.target.reset();
      status(state, `Registered ${nodeId}. Install it with the command below.`, "ok");
      await loadNodes();
      const details = list.querySelector(`[data-node-id="${CSS.escape(nodeId)}"]`);
      details.dataset.loaded = "1";
      details.open = true;
      const install = await fillNode(details, nodeId);
      if (install) await installCommand(nodeId, install.out);
      details.scrollIntoView({ block: "start" });
    } catch (err) {
      status(state, `Not registered: ${errorText(err)}`, "error");
    }
  });

  apiAll("/api/v1/admin/groups/", 1000)
    .then((found) => {
      groups = found;
      groupBoxes(document.getElementById("new-node-groups"), "new-node-group");
    })
    .catch((err) => banner(`Could not load groups: ${err.message}`))
    .then(loadNodes)
    .catch((err) => banner(`Could not load nodes: ${err.message}`));

  /* --- system provider defaults --- */
  wireAll("system");

  /* --- audit log --- */
  const tbody = document.querySelector("#audit-table tbody");
  const more = document.getElementById("audit-more");
  let next = null;

  function auditQuery() {
    const params = new URLSearchParams();
    for (const name of ["actor_email", "action", "node"]) {
      const value = document.querySelector(`#audit-form [name="${name}"]`).value.trim();
      if (value) params.set(name, value);
    }
    for (const name of ["since", "until"]) {
      const value = document.querySelector(`#audit-form [name="${name}"]`).value;
      if (value) params.set(name, new Date(value).toISOString());
    }
    return params.toString();
  }

  function auditRow(e) {
    const details = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : "";
    return el("tr", { "data-action": e.action },
      el("td", {}, new Date(e.created_at).toLocaleString()),
      el("td", {}, e.actor_label || (e.source !== "api" ? e.source : "—")),
      el("td", {}, el("code", {}, e.action)),
      el("td", {}, [e.target_type, e.target_id].filter(Boolean).join(" ")),
      el("td", { class: "small" }, e.client_ip || ""),
      el("td", { class: "details" }, details));
  }

  async function loadAudit(append) {
    try {
      const page = await api(append && next ? next : `/api/v1/audit/?${auditQuery()}`);
      if (!append) tbody.replaceChildren();
      tbody.append(...page.results.map(auditRow));
      next = page.next ? new URL(page.next, location.href).pathname + new URL(page.next, location.href).search : null;
      more.hidden = !next;
      document.getElementById("audit-count").textContent = `${page.count} event${page.count === 1 ? "" : "s"}${page.count ? `, newest first` : ""}.`;
    } catch (err) {
      document.getElementById("audit-count").textContent = `Could not load: ${errorText(err)}`;
    }
  }

  document.getElementById("audit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(false);
  });
  more.addEventListener("click", () => loadAudit(true));
  loadAudit(false);
});
