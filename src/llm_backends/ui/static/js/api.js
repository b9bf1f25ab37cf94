// The Admin API over fetch, with the signed-in token. The token lives in sessionStorage only.

const TOKEN_KEY = "llm-backends.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(messageOf(status, body));
    this.status = status;
    this.body = body;
  }
}

function messageOf(status, body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && body.error) return typeof body.error === "string" ? body.error : body.error.message;
  return `HTTP ${status}`;
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export function authHeaders(extra = {}) {
  const headers = { ...extra };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  return headers;
}

/** JSON call; throws ApiError on a non-2xx answer (with its parsed body). */
export async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** Like api(), but an endpoint this server does not have answers null. */
export async function optional(method, path) {
  try {
    return await api(method, path);
  } catch (error) {
    // 422: an older server reads the path as a config id.
    if (error instanceof ApiError && [404, 405, 422].includes(error.status)) return null;
    throw error;
  }
}

const WRITE = "llm_backends:write";

/** Who the token is: {name, scopes, canWrite}. Falls back to probing on older servers. */
export async function whoami() {
  const me = await optional("GET", "/api/auth/whoami");
  if (me) return { ...me, canWrite: (me.scopes || []).includes(WRITE) };
  await api("GET", "/api/llm-backends");  // 401 for a bad token
  // No whoami here: a write to a config that cannot exist answers 404 to a writer, 403 to a reader.
  try {
    await api("PUT", "/api/llm-backends/2147483647", {});
    return { name: "token", scopes: [], canWrite: true };
  } catch (error) {
    return { name: "token", scopes: [], canWrite: error.status !== 403 && error.status !== 401 };
  }
}
