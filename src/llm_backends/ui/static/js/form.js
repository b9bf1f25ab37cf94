// The create/edit dialog: sends the form, shows a 422's errors beside the fields they name.

import { api, ApiError } from "./api.js";
import { $ } from "./dom.js";

const NUMBERS = new Set(["max_tokens", "temperature_default", "timeout_seconds", "priority"]);
const NULLABLE = new Set(["backend_model", "description"]);
// Several servers, fallbacks, a concurrency cap, the key's header: sent when filled in, or when
// the server's configs have them (an older server without them is not sent what it refuses).
const OPTIONAL = new Set(["endpoints", "fallbacks", "max_concurrency", "api_key_header"]);
const DEFAULTS = {
  model_name: "", backend_type: "ollama", endpoint_url: "", backend_model: "", api_key: "",
  max_tokens: 2048, temperature_default: 0.7, timeout_seconds: 60, priority: 100,
  description: "", enabled: true, endpoints: [], fallbacks: [], max_concurrency: null,
  api_key_header: null,
};

function shown(name, value) {
  if (name === "endpoints") return (value || []).map((server) => server.url).join("\n");
  if (name === "fallbacks") return (value || []).join(", ");
  return value === null || value === undefined ? "" : String(value);
}

function parsed(name, raw, previous) {
  if (name === "endpoints") {
    const weights = new Map((previous || []).map((server) => [server.url, server]));
    return raw.split("\n").map((line) => line.trim()).filter(Boolean)
      .map((url) => ({ ...(weights.get(url) || {}), url }));
  }
  if (name === "fallbacks") return raw.split(",").map((item) => item.trim()).filter(Boolean);
  if (name === "api_key_header") return raw.trim() || null;
  return raw.trim() === "" ? null : Number(raw);  // max_concurrency
}

export class ConfigForm {
  constructor({ onSaved }) {
    this.dialog = $("config-dialog");
    this.form = $("config-form");
    this.onSaved = onSaved;
    this.editing = null;
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.save(); });
    this.dialog.querySelector("[data-close]").addEventListener("click", () => this.dialog.close());
  }

  open(config = null) {
    this.editing = config;
    this.clearErrors();
    $("config-title").textContent = config ? `Edit ${config.model_name}` : "New config";
    $("api-key-hint").textContent = config && config.has_api_key
      ? "(set; leave empty to keep it)" : "(optional, write-only)";
    const values = { ...DEFAULTS, ...(config || {}), api_key: "" };
    for (const element of this.form.elements) {
      if (!element.name) continue;
      const value = values[element.name];
      if (element.type === "checkbox") element.checked = Boolean(value);
      else element.value = shown(element.name, value);
    }
    this.dialog.showModal();
    this.form.elements.model_name.focus();
  }

  body() {
    const body = {};
    for (const element of this.form.elements) {
      const name = element.name;
      if (!name) continue;
      if (element.type === "checkbox") { body[name] = element.checked; continue; }
      const raw = element.value;
      if (name === "api_key") { if (raw) body[name] = raw; continue; }
      if (OPTIONAL.has(name)) {
        const known = this.editing && name in this.editing;
        if (raw.trim() || known) body[name] = parsed(name, raw, this.editing && this.editing[name]);
        continue;
      }
      if (NUMBERS.has(name)) body[name] = raw.trim() === "" ? null : Number(raw);
      else if (NULLABLE.has(name)) body[name] = raw.trim() === "" ? null : raw;
      else body[name] = raw;
    }
    return body;
  }

  async save() {
    this.clearErrors();
    const button = $("config-save");
    button.disabled = true;
    try {
      const saved = this.editing
        ? await api("PUT", `/api/llm-backends/${this.editing.id}`, this.body())
        : await api("POST", "/api/llm-backends", this.body());
      this.dialog.close();
      this.onSaved(saved);
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
    }
  }

  showError(error) {
    if (error instanceof ApiError && error.status === 422 && error.body && error.body.errors) {
      const unplaced = [];
      for (const item of error.body.errors) {
        const loc = (item.loc || []).filter((part) => part !== "body");
        let message = String(item.msg || "invalid").replace(/^Value error, /, "");
        // A check across fields says which one first: "endpoints: ... listed twice".
        const named = /^([a-z_]+): (.*)$/.exec(message);
        if (!loc.length && named) { loc.push(named[1]); message = named[2]; }
        if (!this.fieldError(String(loc[0]), message)) unplaced.push(`${loc.join(".") || "body"}: ${message}`);
      }
      if (unplaced.length) $("form-error").textContent = unplaced.join("; ");
      return;
    }
    if (error instanceof ApiError && error.status === 409) {
      this.fieldError("model_name", error.message);
      return;
    }
    $("form-error").textContent = error.message || String(error);
  }

  fieldError(name, message) {
    const field = this.form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (!field) return false;
    field.classList.add("invalid");
    const slot = field.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    return true;
  }

  clearErrors() {
    $("form-error").textContent = "";
    for (const field of this.form.querySelectorAll("[data-field]")) {
      field.classList.remove("invalid");
      field.querySelector(".field-error").textContent = "";
    }
  }
}
