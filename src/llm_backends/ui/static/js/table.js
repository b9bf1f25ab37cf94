// The configs table: one row per config, its servers' health and the last hour's charts.

import { el, fmtMs, fmtNumber, fmtTime, replaceChildren } from "./dom.js";
import { sparkline } from "./charts.js";

function serverLine(server) {
  // A server the status endpoint has not probed yet has no `since`: its health is unknown.
  const known = server.healthy === false || (server.healthy === true && Boolean(server.since));
  const state = !known ? "" : server.healthy ? "up" : "down";
  const words = !known ? "health unknown" : server.healthy ? "healthy" : "unhealthy";
  const details = [words];
  if (server.since) details.push(`since ${fmtTime(server.since)}`);
  if (server.last_error) details.push(server.last_error);
  if (server.probe_latency_ms !== null && server.probe_latency_ms !== undefined) {
    details.push(`probe ${fmtMs(server.probe_latency_ms)}`);
  }
  return el("div", { className: "server", title: details.join(" · ") },
    el("span", { className: `dot ${state}`, "aria-label": words }),
    el("span", { className: "url" }, server.url),
    server.in_flight ? el("span", { className: "inflight" }, `${server.in_flight} in flight`) : null,
  );
}

function serversCell(config, status) {
  const servers = status && status.servers && status.servers.length
    ? status.servers
    : [config.endpoint_url, ...(config.endpoints || []).map((server) => server.url)]
      .map((url) => ({ url, healthy: null }));
  return el("td", { className: "servers-cell" }, servers.map(serverLine));
}

function chartsCell(series) {
  if (!series) return el("td", { className: "muted small" }, "—");
  const sum = (values) => values.reduce((a, b) => a + (b || 0), 0);
  const latencies = series.latency_ms.filter((v) => v !== null);
  const peakLatency = latencies.length ? Math.max(...latencies) : null;
  return el("td", {},
    el("div", { className: "charts" },
      el("div", { className: "chart" },
        sparkline(series.requests, { title: `${sum(series.requests)} requests in the last hour` }),
        el("span", { className: "chart-label" }, `${sum(series.requests)} req`)),
      el("div", { className: "chart" },
        sparkline(series.errors, { color: "#d64545", title: `${sum(series.errors)} errors` }),
        el("span", { className: "chart-label" }, `${sum(series.errors)} err`)),
      el("div", { className: "chart" },
        sparkline(series.latency_ms, { kind: "line", color: "#7a4fd6",
                                       title: `peak ${fmtMs(peakLatency)} per minute mean` }),
        el("span", { className: "chart-label" }, peakLatency === null ? "— ms" : `≤ ${fmtMs(peakLatency)}`)),
    ));
}

function enabledCell(config, canWrite, handlers) {
  if (!canWrite) {
    return el("td", {}, el("span", { className: `state ${config.enabled ? "on" : ""}` },
      config.enabled ? "enabled" : "disabled"));
  }
  return el("td", {}, el("button", {
    type: "button", className: "switch", role: "switch",
    "aria-checked": String(config.enabled),
    "aria-label": `${config.enabled ? "Disable" : "Enable"} ${config.model_name}`,
    dataset: { action: "toggle" },
    onclick: () => handlers.onToggle(config),
  }));
}

function actionsCell(config, canWrite, handlers) {
  const button = (label, action, onclick, extra = "") => el("button", {
    type: "button", className: `button link ${extra}`, dataset: { action }, onclick,
  }, label);
  return el("td", {}, el("div", { className: "row-actions" },
    button("Try", "try", () => handlers.onTry(config)),
    button("History", "history", () => handlers.onHistory(config)),
    canWrite ? button("Edit", "edit", () => handlers.onEdit(config)) : null,
    canWrite ? button("Delete", "delete", () => handlers.onDelete(config), "danger-text") : null,
  ));
}

export function configRow(config, { status, series, canWrite, handlers }) {
  const errorRate = config.total_requests ? config.total_errors / config.total_requests : 0;
  return el("tr", { className: config.enabled ? "" : "disabled", dataset: { id: config.id } },
    el("td", { className: "model-cell" },
      el("div", { className: "model" }, config.model_name),
      config.description ? el("div", { className: "description" }, config.description) : null),
    el("td", { className: "backend-cell" },
      el("span", { className: "badge type" }, config.backend_type),
      config.backend_model ? el("div", { className: "description" }, `as ${config.backend_model}`) : null,
      config.fallbacks && config.fallbacks.length
        ? el("div", { className: "description" }, `then ${config.fallbacks.join(" → ")}`) : null),
    serversCell(config, status),
    enabledCell(config, canWrite, handlers),
    el("td", { className: "num" }, fmtNumber(config.total_requests)),
    el("td", { className: `num ${errorRate > 0.05 ? "errors-bad" : ""}` },
      fmtNumber(config.total_errors)),
    el("td", { className: "num" }, fmtMs(config.avg_latency_ms)),
    el("td", { className: "num" }, fmtNumber(config.avg_tokens_per_sec, 1)),
    chartsCell(series),
    actionsCell(config, canWrite, handlers),
  );
}

export function renderTable(tbody, configs, context) {
  const byModel = new Map(((context.status && context.status.configs) || [])
    .map((c) => [c.model_name, c]));
  const series = (context.timeseries && context.timeseries.models) || {};
  replaceChildren(tbody, configs.map((config) => configRow(config, {
    status: byModel.get(config.model_name),
    series: series[config.model_name],
    canWrite: context.canWrite,
    handlers: context.handlers,
  })));
}

export function renderDefaults(list, status) {
  const servers = (status && status.default_servers) || [];
  if (!status) {
    replaceChildren(list, el("li", { className: "muted small" },
      "This server has no status endpoint: server health is not shown."));
    return;
  }
  if (!servers.length) {
    replaceChildren(list, el("li", { className: "muted small" }, "None configured."));
    return;
  }
  replaceChildren(list, servers.map((server) => el("li", {},
    serverLine(server),
    server.models && server.models.length
      ? el("div", { className: "server-detail" }, server.models.join(", "))
      : null)));
}
