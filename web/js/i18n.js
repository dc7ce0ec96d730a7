// The annotator page's strings: t(key, fallback, vars) looks the key up in the catalog of the
// project's interface language (web/i18n/<code>.json, served as /static/i18n/<code>.json), falling back
// to the English text given, which is also en.json's (tests/test_i18n_catalogs.py keeps them equal).
// Placeholders are written {name} and filled from vars. Counted phrases use tn(): the catalog holds one
// entry per plural category the language needs ("key#one", "key#other"; Arabic adds zero, two, few,
// many), picked by Intl.PluralRules. HTML carries data-i18n="key" (text), data-i18n-title,
// data-i18n-label (aria-label), data-i18n-placeholder and data-i18n-alt; translatePage() applies them.

let catalog = {};
let language = "en";

/** Fetch a language's catalog (fetched JSON, never a script: the CSP allows only our own files). */
export async function loadCatalog(code) {
  if (code === language && Object.keys(catalog).length) return language;
  let loaded = null;
  try {
    const response = await fetch(`/static/i18n/${encodeURIComponent(code)}.json`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.ok) loaded = await response.json();
  } catch {
    // the network: the page still works in English
  }
  if (loaded && typeof loaded === "object") {
    catalog = loaded;
    language = code;
  } else {
    catalog = {};
    language = "en";
  }
  return language;
}

export function currentLanguage() {
  return language;
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(catalog, key);
}

function fill(text, vars) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export function t(key, fallback, vars = {}) {
  return fill(has(key) ? catalog[key] : fallback, vars);
}

/** A counted phrase: forms is the English {one, other}; vars.count is filled with count. */
export function tn(key, count, forms, vars = {}) {
  const all = { count, ...vars };
  const category = new Intl.PluralRules(language).select(count);
  for (const candidate of [`${key}#${category}`, `${key}#other`]) {
    if (has(candidate)) return fill(catalog[candidate], all);
  }
  const english = new Intl.PluralRules("en").select(count);
  return fill(forms[english] ?? forms.other, all);
}

/** A time of day in the page's language, with the digits the rest of the page uses (0-9). */
export function timeOfDay(date) {
  return date.toLocaleTimeString(`${language}-u-nu-latn`, { hour: "2-digit", minute: "2-digit" });
}

/** <html lang> and dir: set before anything is shown, so a right-to-left page never flashes mirrored. */
export function applyDirection(code, direction) {
  document.documentElement.lang = code;
  document.documentElement.dir = direction === "rtl" ? "rtl" : "ltr";
}

const ATTRIBUTES = [
  ["i18nTitle", "title"],
  ["i18nLabel", "aria-label"],
  ["i18nPlaceholder", "placeholder"],
  ["i18nAlt", "alt"],
];

/** Put the catalog's text into every element marked with data-i18n*; the HTML's English is the fallback. */
export function translatePage(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    if (element.dataset.i18nSource === undefined) element.dataset.i18nSource = element.textContent.trim();
    element.textContent = t(element.dataset.i18n, element.dataset.i18nSource);
  }
  for (const [data, attribute] of ATTRIBUTES) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const element of root.querySelectorAll(selector)) {
      const source = `${data}Source`;
      if (element.dataset[source] === undefined) element.dataset[source] = element.getAttribute(attribute) || "";
      element.setAttribute(attribute, t(element.dataset[data], element.dataset[source]));
    }
  }
}

/**
 * An API or microphone error as a sentence in the page's language: "error.<code>" from the catalog
 * (filled with the message and what the caller knows, e.g. {min}), else the catalog's "error.unknown"
 * wrapped around the server's own (English) message. In English the server's own message wins: it
 * was written for the annotator and carries what was measured (the take's seconds, its silence).
 */
export function errorText(error, vars = {}) {
  const message = (error && error.message) || String(error);
  const code = error && error.code;
  if (language === "en" && code && error.message) return message;
  if (code && has(`error.${code}`)) return t(`error.${code}`, message, { message, ...vars });
  return t("error.unknown", "{message}", { message });
}
