// Stored tokens (`/api/tokens`, scope tokens:manage): list, create, revoke.
// A new token is shown once, in the page only: the server keeps its hash.

import { api, ApiError } from "./api.js";
import { $, confirmed, el, fmtTime, replaceChildren } from "./dom.js";

export const MANAGE = "tokens:manage";

/** What each scope lets a token do (the server's list; an unknown one shows as is). */
const SCOPES = {
  "llm_backends:read": "read configs",
  "llm_backends:write": "change configs (also read, metrics)",
  "llm_backends:metrics": "read metrics",
  "llm:generate": "call the gateway",
  "tokens:manage": "manage tokens",
  "llm_backends:secrets": "read backends' API keys (a library router)",
};

function scopeBadges(scopes) {
  return scopes.map((scope) => el("span", { className: "badge type", title: SCOPES[scope] }, scope));
}

export class TokensPanel {
  /** onOwnRevoked: the signed-in token was revoked here (the page signs out);
   *  onChanged: a token was created or revoked (the audit log has a new entry). */
  constructor({ onOwnRevoked, onChanged }) {
    this.onOwnRevoked = onOwnRevoked;
    this.onChanged = onChanged;
    this.me = null;
    this.form = $("token-form");
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.create(); });
    $("new-token-copy").addEventListener("click", () => this.copy());
  }

  /** Shown to a token that has tokens:manage; it can grant only the scopes it has. */
  show(me) {
    this.hide();
    this.me = me;
    if (!(me.scopes || []).includes(MANAGE)) return;
    $("tokens-panel").hidden = false;
    replaceChildren($("token-scopes"), me.scopes.map((scope) =>
      el("label", { className: "check scope", title: SCOPES[scope] },
        el("input", { type: "checkbox", name: "scopes", value: scope }),
        el("span", {}, scope), el("span", { className: "muted small" }, SCOPES[scope] || ""))));
    this.refresh();
  }

  /** Hidden, and a token shown once is gone from the page (sign-out, another sign-in). */
  hide() {
    $("tokens-panel").hidden = true;
    this.forgetNewToken();
    replaceChildren($("token-rows"));
  }

  forgetNewToken() {
    $("new-token").hidden = true;
    $("new-token-value").value = "";
    $("new-token-copy").textContent = "Copy";
  }

  async refresh() {
    try {
      this.render(await api("GET", "/api/tokens"));
      $("token-error").textContent = "";
    } catch (error) {
      $("token-error").textContent = `Could not list tokens: ${error.message}`;
    }
  }

  render(tokens) {
    const rows = tokens.map((token) => el("tr", { className: token.active ? "" : "disabled", dataset: { id: token.id } },
      el("td", { className: "token-name" }, token.name,
        token.id === this.me.token_id ? el("span", { className: "muted small" }, " (this page)") : null),
      el("td", {}, scopeBadges(token.scopes)),
      el("td", { className: "small" }, fmtTime(token.created_at)),
      el("td", { className: "small" }, token.active ? "active" : `revoked ${fmtTime(token.revoked_at)}`),
      el("td", { className: "right" }, token.active
        ? el("button", { type: "button", className: "button link danger-text", dataset: { action: "revoke" },
                         onclick: () => this.confirmRevoke(token) }, "Revoke")
        : null)));
    replaceChildren($("token-rows"), rows);
    $("tokens-empty").hidden = tokens.length > 0;
  }

  async create() {
    const name = this.form.elements.name.value.trim();
    const scopes = [...this.form.querySelectorAll("input[name=scopes]:checked")].map((box) => box.value);
    $("token-error").textContent = "";
    this.forgetNewToken();
    if (!scopes.length) {
      $("token-error").textContent = "scopes: choose at least one";
      return;
    }
    const button = $("token-create");
    button.disabled = true;
    try {
      const created = await api("POST", "/api/tokens", { name, scopes });
      $("new-token-name").textContent = created.name;
      $("new-token-value").value = created.token;
      $("new-token").hidden = false;
      this.form.reset();
      this.onChanged();
      await this.refresh();
    } catch (error) {
      $("token-error").textContent = errorText(error);
    } finally {
      button.disabled = false;
    }
  }

  async copy() {
    const input = $("new-token-value");
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      $("new-token-copy").textContent = "Copied";
    } catch {
      $("new-token-copy").textContent = "Press Ctrl+C";  // no clipboard access: it is selected
    }
  }

  async confirmRevoke(token) {
    $("revoke-name").textContent = token.name;
    if (!await confirmed($("revoke-dialog"))) return;
    try {
      await api("DELETE", `/api/tokens/${token.id}`);
    } catch (error) {
      $("token-error").textContent = `Could not revoke ${token.name}: ${error.message}`;
      return;
    }
    if (token.id === this.me.token_id) {
      this.onOwnRevoked();
      return;
    }
    this.onChanged();
    await this.refresh();
  }
}

/** A 422's errors as "field: message"; anything else as its message. */
function errorText(error) {
  if (error instanceof ApiError && error.status === 422 && error.body && error.body.errors) {
    return error.body.errors.map((item) => {
      const field = (item.loc || []).filter((part) => part !== "body").join(".") || "body";
      return `${field}: ${String(item.msg || "invalid").replace(/^Value error, /, "")}`;
    }).join("; ");
  }
  return error.message || String(error);
}
