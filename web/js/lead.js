// What the lead pages (review, dashboard, admin) share: the signed-in lead, the top bar, small DOM helpers.
import { api as request, isLead, logout, navLinks } from "./api.js";

// api.js's fetch wrapper (CSRF header, JSON errors as ApiError, 401 → /login), called with `body` as
// either a JSON value or a Blob/File sent as is.
export function api(path, { body, ...options } = {}) {
  if (body === undefined || body instanceof Blob) return request(path, { ...options, body });
  return request(path, { ...options, json: body });
}

// The signed-in user, or a redirect: annotators are sent to their task page.
export async function requireLead() {
  const me = await api("/api/me");
  if (!isLead(me)) {
    window.location.assign("/task");
    throw new Error("not a lead");
  }
  return me;
}

// Fills <header id="topbar"> with the page links and the user's name.
export function renderTopbar(me) {
  const bar = document.getElementById("topbar");
  if (!bar) return;
  const out = el("button", { type: "button", class: "link" }, "Log out");
  out.addEventListener("click", () => logout());
  bar.replaceChildren(
    el("span", { class: "brand" }, "voicecap"),
    el("nav", { class: "pages" }, navLinks(me, window.location.pathname)),
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
