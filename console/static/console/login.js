/* Sign-in page: password through POST /api/v1/auth/login/ (session cookie + CSRF). */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  if (!form) return;
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await Cortex.api("/api/v1/auth/csrf/");
      await Cortex.api("/api/v1/auth/login/", {
        method: "POST",
        noRedirect: true,
        body: {
          email: document.getElementById("email").value,
          password: document.getElementById("password").value,
        },
      });
      const next = document.body.dataset.next || "/console/";
      location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/console/");
    } catch (err) {
      error.textContent = err.message || "Sign-in failed.";
      error.hidden = false;
    }
  });
});
