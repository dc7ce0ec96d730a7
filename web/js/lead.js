// What the lead pages (review, dashboard, admin) share: the signed-in lead, the top bar, small DOM helpers.

// fetch for the JSON API: sends the CSRF cookie back in X-CSRF-Token, turns error bodies into thrown
// Errors carrying {code, status}, and sends a logged-out browser to /login.
export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") options.headers["X-CSRF-Token"] = csrfToken();
  if (body instanceof Blob || body instanceof ArrayBuffer) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw Object.assign(new Error("Please log in."), { code: "not_authenticated", status: 401 });
  }
  if (raw) return response;
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    throw Object.assign(new Error(message), { code: data && data.code, status: response.status });
  }
  return data;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)voicecap_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// The signed-in user, or a redirect: annotators are sent to their task page.
export async function requireLead() {
  const me = await api("/api/me");
  if (me.role !== "lead" && me.role !== "admin") {
    window.location.assign("/task");
    throw new Error("not a lead");
  }
  return me;
}

const PAGES = [
  ["/review", "Review"],
  ["/dashboard", "Dashboard"],
  ["/admin", "Admin"],
];

// Fills <header id="topbar"> with the page links and the user's name.
export function renderTopbar(me) {
  const bar = document.getElementById("topbar");
  if (!bar) return;
  const nav = el("nav", { class: "pages" });
  for (const [href, label] of PAGES) {
    const link = el("a", { href }, label);
    if (window.location.pathname === href) link.setAttribute("aria-current", "page");
    nav.append(link);
  }
  const out = el("button", { type: "button", class: "link" }, "Log out");
  out.addEventListener("click", async () => {
    await api("/api/auth/logout", { method: "POST" }).catch(() => {});
    window.location.assign("/login");
  });
  bar.replaceChildren(
    el("span", { class: "brand" }, "voicecap"),
    nav,
    el("span", { class: "who" }, `${me.name} · ${me.role}`),
    out,
  );
}

// el("a", {href: "/x", class: "y"}, "text", child…): attributes are set, children are text or nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let toastTimer = 0;
// A short message at the bottom of the page; kind "error" stays until replaced.
export function toast(message, kind = "info") {
  let box = document.getElementById("toast");
  if (!box) {
    box = el("div", { id: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  if (kind !== "error") toastTimer = setTimeout(() => (box.hidden = true), 3500);
}

export function errorText(error) {
  return error && error.message ? error.message : String(error);
}

export function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

export function pct(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

// Fills a <select> with options [{value, label}], keeping the current choice when it still exists.
export function fillSelect(select, options, { any = null } = {}) {
  const current = select.value;
  const items = any ? [{ value: "", label: any }, ...options] : options;
  select.replaceChildren(...items.map((o) => el("option", { value: o.value }, o.label)));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}
