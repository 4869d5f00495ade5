/* Provider forms (settings: my layer; admin: the system layer): load, show sources, save. */
"use strict";

const CortexProviders = (() => {
  const { api } = Cortex;
  const FIELDS = ["base_url", "model", "voice", "api_key"];

  function sourceLabel(source) {
    if (!source) return "";
    if (source === "user") return "mine";
    if (source.startsWith("group:")) return "group " + source.slice(6);
    return source; // system, session, default
  }

  function isMasked(value) {
    return value && typeof value === "object" && "configured" in value;
  }

  function maskText(value) {
    if (!isMasked(value)) return "";
    return value.configured ? "configured · …" + (value.last4 || "") : "not set";
  }

  function setStatus(form, text, kind) {
    const node = form.querySelector(".status");
    node.textContent = text;
    node.dataset.kind = kind || "";
  }

  function errorText(err) {
    if (!err.fields) return err.message;
    const parts = Object.entries(err.fields).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`);
    return `${err.message} ${parts.join("; ")}`;
  }

  /** Show only the fields the chosen (or, when inheriting, the effective) provider takes. */
  function showParams(form, fallbackProvider) {
    const select = form.querySelector('[data-field="provider"]');
    let option = select.selectedOptions[0];
    if (!select.value && fallbackProvider) {
      option = [...select.options].find((o) => o.value === fallbackProvider) || option;
    }
    const params = option ? option.dataset.params.split(" ").filter(Boolean) : FIELDS;
    for (const label of form.querySelectorAll("[data-param]")) {
      label.hidden = !params.includes(label.dataset.param);
    }
  }

  class ProviderForm {
    /** scope "me" (my layer, with effective values) or "system" (admins). */
    constructor(form) {
      this.form = form;
      this.kind = form.dataset.kind;
      this.scope = form.dataset.scope;
      this.layer = {};
      this.effective = null;
      this.url =
        this.scope === "me" ? `/api/v1/preferences/${this.kind}/` : `/api/v1/admin/preferences/${this.kind}/`;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.save();
      });
      form.querySelector('[data-field="provider"]').addEventListener("change", () => this.refreshParams());
      const verify = form.querySelector(".verify");
      if (verify) verify.addEventListener("click", () => this.verify());
    }

    input(name) {
      return this.form.querySelector(`[data-field="${name}"]`);
    }

    refreshParams() {
      showParams(this.form, this.effective ? this.effective.provider : "");
    }

    fill(layer, effective) {
      this.layer = layer;
      this.effective = effective || null;
      this.input("provider").value = layer.provider || "";
      for (const name of FIELDS) {
        const input = this.input(name);
        const value = layer[name];
        if (name === "api_key") {
          input.value = "";
          input.placeholder = isMasked(value) && value.configured ? maskText(value) + " (type to replace)" : "not set";
        } else {
          input.value = value === undefined || value === null ? "" : String(value);
        }
      }
      if (layer.locked) {
        for (const box of this.form.querySelectorAll('input[name="locked"]')) box.checked = layer.locked.includes(box.value);
      }
      this.form.querySelector('input[name="clear_key"]').checked = false;
      if (effective) this.showEffective(effective);
      this.refreshParams();
    }

    showEffective(eff) {
      const locked = eff.locked || {};
      const sources = eff.sources || {};
      const values = eff.values || {};
      for (const name of ["provider", ...FIELDS]) {
        const input = this.input(name);
        const note = this.form.querySelector(`[data-source-for="${name}"]`);
        const lockedBy = locked[name];
        input.disabled = Boolean(lockedBy);
        if (name !== "provider" && name !== "api_key" && !input.value && values[name] !== undefined && values[name] !== null) {
          input.placeholder = String(values[name]);
        }
        if (name === "api_key" && !(isMasked(this.layer.api_key) && this.layer.api_key.configured) && isMasked(values.api_key)) {
          input.placeholder = maskText(values.api_key);
        }
        if (!note) continue;
        const parts = [];
        if (sources[name]) parts.push("from " + sourceLabel(sources[name]));
        if (lockedBy) parts.push("locked by " + sourceLabel(lockedBy));
        note.textContent = parts.join(" · ");
        note.dataset.locked = lockedBy ? "1" : "";
      }
      const label = this.form.querySelector('[data-field="provider"]').closest("label");
      let note = label.querySelector("[data-source-for='provider']");
      if (!note) {
        note = Cortex.el("span", { class: "source small muted", "data-source-for": "provider" });
        label.append(note);
      }
      note.textContent = [
        eff.provider ? `now ${eff.provider}` : "",
        sources.provider ? "from " + sourceLabel(sources.provider) : "",
        locked.provider ? "locked by " + sourceLabel(locked.provider) : "",
      ].filter(Boolean).join(" · ");
      const summary = this.form.querySelector(".effective");
      if (summary) {
        summary.textContent = eff.error
          ? `Not working yet: ${eff.error.message}`
          : `In use: ${eff.provider}${values.model ? " · " + values.model : ""}`;
        summary.dataset.ok = eff.error ? "0" : "1";
      }
    }

    body() {
      const body = {};
      const provider = this.input("provider");
      if (!provider.disabled) body.provider = provider.value || null;
      for (const name of FIELDS) {
        const input = this.input(name);
        if (input.disabled || input.closest("label").hidden) continue;
        const value = input.value.trim();
        if (name === "api_key") {
          if (value) body.api_key = value;
          else if (this.form.querySelector('input[name="clear_key"]').checked) body.api_key = null;
          continue;
        }
        if (value) body[name] = value;
        else if (this.layer[name] !== undefined && this.layer[name] !== null && this.layer[name] !== "") body[name] = null;
      }
      if (this.scope === "system") {
        body.locked = [...this.form.querySelectorAll('input[name="locked"]:checked')].map((b) => b.value);
      }
      return body;
    }

    async load() {
      const layer = await api(this.url);
      let effective = null;
      if (this.scope === "me") effective = (await api("/api/v1/preferences/"))[this.kind];
      this.fill(layer, effective);
    }

    async save() {
      setStatus(this.form, "Saving…");
      try {
        const layer = await api(this.url, { method: "PATCH", body: this.body() });
        let effective = null;
        if (this.scope === "me") effective = (await api("/api/v1/preferences/"))[this.kind];
        this.fill(layer, effective);
        setStatus(this.form, "Saved.", "ok");
        document.dispatchEvent(new CustomEvent("cortex:providers-changed"));
      } catch (err) {
        setStatus(this.form, `Not saved: ${errorText(err)}`, "error");
      }
    }

    async verify() {
      setStatus(this.form, "Asking the provider…");
      try {
        const result = await api(`/api/v1/preferences/${this.kind}/verify/`, { method: "POST", body: {} });
        if (result.ok) {
          setStatus(this.form, `Works: ${result.provider} answered in ${result.latency_ms} ms.`, "ok");
        } else {
          const why = [result.error_code, result.message].filter(Boolean).join(": ");
          setStatus(this.form, `${result.provider || "The provider"} did not work: ${why}`, "error");
        }
      } catch (err) {
        setStatus(this.form, `Could not verify: ${errorText(err)}`, "error");
      }
    }
  }

  async function wireAll(scope) {
    const forms = [...document.querySelectorAll(`.provider-form[data-scope="${scope}"]`)].map((f) => new ProviderForm(f));
    await Promise.all(
      forms.map((f) => f.load().catch((err) => setStatus(f.form, `Could not load: ${err.message}`, "error"))),
    );
    return forms;
  }

  return { wireAll, errorText, setStatus };
})();
