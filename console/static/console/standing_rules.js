/* Settings: the user's standing approval rules, listed and revocable (fills #standing-rules). */
"use strict";

(() => {
  const { el, api, apiAll } = Cortex;

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "never";
  }

  async function load(section) {
    const table = section.querySelector("#standing-rules-table");
    const body = table.querySelector("tbody");
    const empty = section.querySelector("#standing-rules-empty");
    const error = section.querySelector("#standing-rules-error");
    let rules;
    try {
      rules = await apiAll("/api/v1/approval-rules/", 500);
    } catch (err) {
      error.textContent = `Could not load your rules: ${err.message}`;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    table.hidden = !rules.length;
    empty.hidden = rules.length > 0;
    body.replaceChildren(...rules.map((rule) => {
      const what = rule.command_patterns.length ? rule.command_patterns.join(", ") : `action: ${rule.action}`;
      const where = rule.scope === "me" ? "all my chats" : el("a", { href: `/console/sessions/${rule.session_id}/` }, rule.session_title);
      const revoke = el("button", { type: "button", class: "secondary revoke", "aria-label": `Revoke ${rule.tool} ${what} on ${rule.node_id}` }, "Revoke");
      revoke.addEventListener("click", async () => {
        revoke.disabled = true;
        try {
          await api(`/api/v1/approval-rules/${rule.id}/`, { method: "DELETE" });
          await load(section);
        } catch (err) {
          revoke.disabled = false;
          error.textContent = `Could not revoke: ${err.message}`;
          error.hidden = false;
        }
      });
      return el("tr", { "data-rule-id": rule.id },
        el("td", {}, rule.tool),
        el("td", { class: "cmd" }, what),
        el("td", {}, rule.node_id),
        el("td", {}, where),
        el("td", { class: "num" }, `${rule.use_count}× · ${when(rule.last_used_at)}`),
        el("td", {}, revoke));
    }));
  }

  function start() {
    const section = document.getElementById("standing-rules");
    if (!section) return;
    if (!section.querySelector("#standing-rules-table")) {
      // The partial was not included: build the same skeleton here.
      section.append(
        el("h2", { id: "standing-rules-title" }, "Standing approval rules"),
        el("div", { class: "table-wrap" }, el("table", { class: "rows", id: "standing-rules-table", hidden: true },
          el("thead", {}, el("tr", {}, ...["Tool", "Commands", "Node", "Where", "Used", ""].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody"))),
        el("p", { class: "muted", id: "standing-rules-empty", hidden: true }, "No standing rules."),
        el("p", { class: "error", id: "standing-rules-error", hidden: true }));
    }
    load(section);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
