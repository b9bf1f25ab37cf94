// The admin page: sign in, then a table of configs refreshed every few seconds.

import { ActivityPanel } from "./activity.js";
import { api, ApiError, optional, session, whoami } from "./api.js";
import { $, confirmed } from "./dom.js";
import { ConfigForm } from "./form.js";
import { installHistoryDialog, openHistory } from "./history.js";
import { renderDefaults, renderTable } from "./table.js";
import { TokensPanel } from "./tokens.js";
import { TryPanel } from "./tryit.js";

const REFRESH_MS = 5000;

const state = { me: null, configs: [], timer: null, lastRender: "" };
const tryPanel = new TryPanel();
const configForm = new ConfigForm({ onSaved: () => refresh(true) });
const activity = new ActivityPanel();
const tokensPanel = new TokensPanel({
  onOwnRevoked: () => { session.token = null; showSignIn("You revoked the token this page used."); },
  onChanged: () => activity.refresh(),
});
installHistoryDialog();

function showSignIn(message = "") {
  clearTimeout(state.timer);
  state.me = null;
  $("app-view").hidden = true;
  $("who").hidden = true;
  tokensPanel.hide();
  activity.hide();
  $("sign-in-view").hidden = false;
  $("sign-in-error").textContent = message;
  $("token-input").focus();
}

function banner(message) {
  $("banner").textContent = message;
  $("banner").hidden = !message;
}

async function signIn(token) {
  session.token = token;
  try {
    state.me = await whoami();
  } catch (error) {
    session.token = null;
    const message = error instanceof ApiError && error.status === 401
      ? "That token is not valid (unknown or revoked)." : `Could not sign in: ${error.message}`;
    showSignIn(message);
    return;
  }
  $("sign-in-view").hidden = true;
  $("app-view").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.me.name;
  const role = $("who-role");
  role.textContent = state.me.canWrite ? "read · write" : "read only";
  role.className = `badge ${state.me.canWrite ? "" : "read"}`;
  $("new-config").hidden = !state.me.canWrite;
  tokensPanel.show(state.me);
  await refresh(true);
}

const handlers = {
  onEdit: (config) => configForm.open(config),
  onHistory: (config) => openHistory(config),
  onTry: (config) => tryPanel.choose(config.model_name),
  onToggle: async (config) => {
    try {
      await api("POST", `/api/llm-backends/${config.id}/toggle`);
      banner("");
    } catch (error) {
      banner(`Could not toggle ${config.model_name}: ${error.message}`);
    }
    await refresh(true);
  },
  onDelete: (config) => confirmDelete(config),
};

async function confirmDelete(config) {
  $("confirm-name").textContent = config.model_name;
  if (!await confirmed($("confirm-dialog"))) return;
  try {
    await api("DELETE", `/api/llm-backends/${config.id}`);
    banner("");
  } catch (error) {
    banner(`Could not delete ${config.model_name}: ${error.message}`);
  }
  await refresh(true);
}

async function refresh(force = false) {
  clearTimeout(state.timer);
  if (!state.me) return;
  try {
    const [configs, status, timeseries] = await Promise.all([
      api("GET", "/api/llm-backends"),
      optional("GET", "/api/llm-backends/status"),
      optional("GET", "/api/llm-backends/timeseries"),
    ]);
    state.configs = configs;
    const snapshot = JSON.stringify([configs, status, timeseries]);
    if (force || snapshot !== state.lastRender) {
      state.lastRender = snapshot;
      render(configs, status, timeseries);
      activity.refresh();  // a write here or elsewhere: its audit entry
    }
    $("refreshed").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session.token = null;
      showSignIn("Your token stopped working (revoked?). Sign in again.");
      return;
    }
    banner(`Could not refresh: ${error.message}`);
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

function render(configs, status, timeseries) {
  renderTable($("config-rows"), configs, { status, timeseries, canWrite: state.me.canWrite, handlers });
  renderDefaults($("default-servers"), status);
  $("empty").hidden = configs.length > 0;
  const enabled = configs.filter((c) => c.enabled).length;
  $("summary").textContent = `${configs.length} config${configs.length === 1 ? "" : "s"}, ${enabled} enabled`
    + (timeseries ? " · charts: this server's last hour" : "");
  tryPanel.setModels(configs.map((c) => c.model_name));
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token-input").value.trim();
  $("token-input").value = "";
  if (token) signIn(token);
});
$("sign-out").addEventListener("click", () => { session.token = null; showSignIn(); });
$("new-config").addEventListener("click", () => configForm.open());

if (session.token) signIn(session.token);
else showSignIn();
