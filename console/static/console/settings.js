/* Settings: my providers (providers.js), default approval policy, API tokens, password. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const { el, api, apiAll, banner } = Cortex;
  const { wireAll, errorText } = CortexProviders;

  function status(id, text, kind) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.dataset.kind = kind || "";
  }

  function when(value) {
    return value ? new Date(value).toLocaleString() : "—";
  }

  /* --- providers --- */
  wireAll("me");

  /* --- default approval policy --- */
  const policy = document.getElementById("approval-policy");
  api("/api/v1/users/me/")
    .then((me) => {
      policy.value = me.default_approval_policy || "ask";
    })
    .catch((err) => banner(`Could not load your profile: ${err.message}`));
  document.getElementById("approval-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const me = await api("/api/v1/users/me/", {
        method: "PATCH",
        body: { default_approval_policy: policy.value },
      });
      policy.value = me.default_approval_policy;
      status("approval-status", "Saved. New chats start with this.", "ok");
    } catch (err) {
      status("approval-status", `Not saved: ${errorText(err)}`, "error");
    }
  });

  /* --- API tokens --- */
  const tbody = document.querySelector("#token-table tbody");

  async function loadTokens() {
    const tokens = await apiAll("/api/v1/users/me/tokens/", 500);
    tbody.replaceChildren();
    const live = tokens.filter((t) => !t.revoked_at);
    document.getElementById("no-tokens").hidden = live.length > 0;
    document.getElementById("token-table").hidden = live.length === 0;
    for (const token of live) {
      const revoke = el("button", { type: "button", class: "secondary danger", "data-token-id": token.id }, "Revoke");
      revoke.setAttribute("aria-label", `Revoke token ${token.name}`);
      revoke.addEventListener("click", async () => {
        if (!window.confirm(`Revoke the token "${token.name}"? Scripts using it stop working.`)) return;
        try {
          await api(`/api/v1/users/me/tokens/${token.id}/`, { method: "DELETE" });
          await loadTokens();
        } catch (err) {
          banner(`Could not revoke: ${err.message}`);
        }
      });
      tbody.append(
        el(
          "tr",
          { "data-token-id": token.id },
          el("td", {}, token.name),
          el("td", {}, el("code", {}, token.prefix + "…")),
          el("td", {}, when(token.created_at)),
          el("td", {}, token.expires_at ? when(token.expires_at) : "never"),
          el("td", {}, when(token.last_used_at)),
          el("td", {}, revoke),
        ),
      );
    }
  }

  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("token-name").value.trim();
    const days = document.getElementById("token-days").value;
    try {
      const created = await api("/api/v1/users/me/tokens/", {
        method: "POST",
        body: days ? { name, expires_days: Number(days) } : { name },
      });
      document.getElementById("token-value").textContent = created.token;
      document.getElementById("token-created").hidden = false;
      event.target.reset();
      await loadTokens();
      document.getElementById("token-copy").focus();
    } catch (err) {
      banner(`Could not create the token: ${errorText(err)}`);
    }
  });
  document.getElementById("token-copy").addEventListener("click", async () => {
    const value = document.getElementById("token-value").textContent;
    try {
      await navigator.clipboard.writeText(value);
      document.getElementById("token-copy").textContent = "Copied";
    } catch (err) {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById("token-value"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
    }
  });
  loadTokens().catch((err) => banner(`Could not load tokens: ${err.message}`));

  /* --- password --- */
  const passwordForm = document.getElementById("password-form");
  if (passwordForm) {
    passwordForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const current = document.getElementById("current-password").value;
      const fresh = document.getElementById("new-password").value;
      if (fresh !== document.getElementById("new-password-again").value) {
        status("password-status", "The two new passwords differ.", "error");
        return;
      }
      try {
        await api("/api/v1/users/me/password/", {
          method: "POST",
          body: { current_password: current, new_password: fresh },
        });
        passwordForm.reset();
        status("password-status", "Password changed.", "ok");
      } catch (err) {
        status("password-status", `Not changed: ${errorText(err)}`, "error");
      }
    });
  }
});
