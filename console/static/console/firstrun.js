/* First-run hint: without a working LLM provider, point to Settings (any page with #provider-hint). */
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const hint = document.getElementById("provider-hint");
  if (!hint) return;
  try {
    const overview = await Cortex.api("/api/v1/preferences/");
    const llm = overview.llm || {};
    if (llm.error) {
      document.getElementById("provider-hint-why").textContent = ` (${llm.error.message})`;
      hint.hidden = false;
    }
  } catch (err) {
    /* a hint only: the page works without it */
  }
});
