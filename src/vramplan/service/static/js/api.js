// The JSON API: one fetch wrapper that turns an error response into an Error with the API's message.
"use strict";

export class ApiError extends Error {
  constructor(message, status, fixes, reasons) {
    super(message);
    this.status = status;
    this.fixes = fixes || [];
    this.reasons = reasons || [];
  }
}

const TOKEN_KEY = "vramplan.token";

/** The API token of a server started with `--auth tokens` (this tab only; never in the URL). */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

/** Called on a 401 so the page can ask for a token. */
export const onUnauthorized = { handler: () => {} };

export async function api(path, body, method) {
  let res;
  const headers = body ? { "content-type": "application/json" } : {};
  if (token.get()) headers.authorization = `Bearer ${token.get()}`;
  try {
    res = await fetch(path, { method: method || (body ? "POST" : "GET"), headers, body: body ? JSON.stringify(body) : undefined });
  } catch (e) {
    throw new ApiError(`the server did not answer (${e.message}): is \`vramplan serve\` running?`, 0);
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (res.status === 401) onUnauthorized.handler();
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError((err && err.message) || `the server answered HTTP ${res.status}`, res.status, err && err.fixes, err && err.reasons);
  }
  if (data == null) throw new ApiError(`the server answered HTTP ${res.status} without JSON`, res.status);
  return data;
}
