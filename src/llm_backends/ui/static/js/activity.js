// Recent changes to every config and token: the audit log (`GET /api/audit`), newest first.

import { optional } from "./api.js";
import { $, append, replaceChildren } from "./dom.js";
import { entryItem } from "./history.js";

const PAGE = 20;

export class ActivityPanel {
  constructor() {
    this.shown = 0;
    $("activity-more").addEventListener("click", () => this.load(this.shown));
  }

  /** The newest page again (after a write, at sign-in). */
  refresh() {
    return this.load(0);
  }

  async load(offset) {
    $("activity-error").textContent = "";
    try {
      const page = await optional("GET", `/api/audit?limit=${PAGE}&offset=${offset}`);
      if (page === null) {  // an older server without an audit log
        $("activity-panel").hidden = true;
        return;
      }
      $("activity-panel").hidden = false;
      const items = page.items.map((entry) => entryItem(entry, { withTarget: true }));
      if (offset === 0) replaceChildren($("activity-list"), items);
      else append($("activity-list"), items);
      this.shown = offset + page.items.length;
      $("activity-more").hidden = this.shown >= page.total;
      $("activity-empty").hidden = page.total > 0;
      $("activity-count").textContent = `${page.total} in all`;
    } catch (error) {
      $("activity-error").textContent = `Could not read the audit log: ${error.message}`;
    }
  }

  hide() {
    $("activity-panel").hidden = true;
    replaceChildren($("activity-list"));
    this.shown = 0;
  }
}
