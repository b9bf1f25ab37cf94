// A config's change history, from the audit log (`GET /api/llm-backends/{id}/history`).

import { optional } from "./api.js";
import { $, el, fmtTime, replaceChildren } from "./dom.js";

const VERBS = {
  "backend.create": "Created", "backend.update": "Updated", "backend.toggle": "Toggled",
  "backend.delete": "Deleted", "token.create": "Token created", "token.revoke": "Token revoked",
};

function show(value) {
  if (value === null || value === undefined) return "∅";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function changesTable(kind, changes) {
  return el("table", { className: "changes" }, el("tbody", {},
    changes.map(([field, change]) => el("tr", {},
      el("td", { className: "muted" }, field),
      kind === "create" ? null : el("td", { className: "before" }, show(change?.before)),
      kind === "create" ? null : el("td", {}, "→"),
      el("td", { className: "after" }, show(change?.after))))));
}

/** One audit entry. `withTarget` (the log of every config and token): it names what it
 *  changed, and its fields fold into a one-line summary. */
export function entryItem(entry, { withTarget = false } = {}) {
  const action = String(entry.action || "");
  const kind = action.split(".")[1] || "";
  const changes = Object.entries(entry.changes || {});
  const target = entry.target?.model_name ?? entry.target?.name ?? "";
  let details = changes.length ? changesTable(kind, changes) : null;
  if (details && withTarget) {
    details = el("details", {},
      el("summary", { className: "muted small" }, changes.map(([field]) => field).join(", ")),
      details);
  }
  return el("li", { className: kind },
    el("div", { className: "what" }, VERBS[action] || action,
      withTarget && target ? el("span", { className: "target" }, ` ${target}`) : null,
      el("span", { className: "muted" }, ` by ${entry.actor?.name ?? "unknown"}`)),
    el("div", { className: "when" }, fmtTime(entry.at)),
    details);
}

export async function openHistory(config) {
  $("history-name").textContent = config.model_name;
  const list = $("history-list");
  replaceChildren(list, el("li", { className: "muted" }, "Loading…"));
  const dialog = $("history-dialog");
  if (!dialog.open) dialog.showModal();
  try {
    const entries = await optional("GET", `/api/llm-backends/${config.id}/history`);
    if (entries === null) {
      replaceChildren(list, el("li", { className: "muted" }, "This server keeps no audit log."));
    } else if (!entries.length) {
      replaceChildren(list, el("li", { className: "muted" }, "No changes recorded."));
    } else {
      replaceChildren(list, entries.map(entryItem));
    }
  } catch (error) {
    replaceChildren(list, el("li", { className: "field-error" }, error.message));
  }
}

export function installHistoryDialog() {
  const dialog = $("history-dialog");
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
}
