/* Chat list: my sessions and a button that starts a new one. */
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const { el, api, apiAll, banner } = Cortex;
  const list = document.getElementById("session-list");
  document.getElementById("new-session").addEventListener("click", async () => {
    try {
      const session = await api("/api/v1/sessions/", { method: "POST", body: {} });
      location.assign(`/console/sessions/${session.id}/`);
    } catch (err) {
      banner(`Could not start a chat: ${err.message}`);
    }
  });
  try {
    const sessions = await apiAll("/api/v1/sessions/", 200);
    document.getElementById("no-sessions").hidden = sessions.length > 0;
    for (const s of sessions) {
      list.append(
        el(
          "li",
          {},
          el("a", { href: `/console/sessions/${s.id}/` }, s.title || `Chat ${s.id}`),
          " ",
          el("span", { class: "muted small" }, new Date(s.updated_at).toLocaleString()),
        ),
      );
    }
  } catch (err) {
    banner(`Could not load chats: ${err.message}`);
  }
});
