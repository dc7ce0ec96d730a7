// The one way pages talk to the API: same-origin fetch, the CSRF header on state-changing requests,
// JSON errors turned into ApiError {status, code, message}, and a trip to /login on 401.

import { t } from "./i18n.js";

const CSRF_COOKIE = "voicecap_csrf";
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0 when the server could not be reached
    this.code = code;
    this.body = body;
  }

  // Worth trying again later: the network, a restarting server, a rate limit.
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export function csrfToken() {
  const prefix = `${CSRF_COOKIE}=`;
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return "";
}

export function goToLogin() {
  const here = location.pathname + location.search;
  const next = here.startsWith("/login") ? "" : `?next=${encodeURIComponent(here)}`;
  location.assign(`/login${next}`);
}

/**
 * api(path, {method, json, body, headers, redirectOn401, signal}) → parsed JSON, null (204), or the
 * Response for non-JSON answers. Throws ApiError.
 */
export async function api(path, options = {}) {
  const { method = "GET", json, body, headers = {}, redirectOn401 = true, signal } = options;
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  if (!SAFE.has(method.toUpperCase())) init.headers["X-CSRF-Token"] = csrfToken();

  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", t("error.network_error", "The server cannot be reached. Check your connection."));
  }
  if (response.ok) {
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("application/json") ? response.json() : response;
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON (a proxy's error page): fall through to a generic message
  }
  const code = (data && data.code) || `http_${response.status}`;
  const message = (data && data.message) || `The server answered ${response.status} ${response.statusText}.`;
  if (response.status === 401 && redirectOn401 && path !== "/api/auth/login") goToLogin();
  throw new ApiError(response.status, code, message, data);
}

export const get = (path, options) => api(path, { ...options, method: "GET" });
export const post = (path, json, options) => api(path, { ...options, method: "POST", json });

export function me() {
  return get("/api/me");
}

export async function logout() {
  try {
    await post("/api/auth/logout", undefined, { redirectOn401: false });
  } finally {
    location.assign("/login");
  }
}

export function isLead(user) {
  return user && (user.role === "lead" || user.role === "admin");
}

// The small nav of pages a lead can reach; annotators have only the task page.
export function navLinks(user, current) {
  // t(): the task page shows this nav in its interface language; lead pages load no catalog (English).
  const links = [["/task", t("nav.record", "Record")]];
  if (isLead(user)) {
    links.push(
      ["/review", t("nav.review", "Review")],
      ["/dashboard", t("nav.dashboard", "Dashboard")],
      ["/admin", t("nav.admin", "Admin")],
    );
  }
  return links.map(([href, label]) => {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    if (href === current) a.setAttribute("aria-current", "page");
    return a;
  });
}
