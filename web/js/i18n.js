// The annotator page's strings: t(key, fallback, vars) looks the key up in the catalog of the
// project's interface language (web/i18n/<code>.json), falling back to the English text given.
// Placeholders are written {name} and filled from vars.

let catalog = {};

export async function loadCatalog(language) {
  // Filled in by the message-catalog work (#14): fetch /static/i18n/<language>.json.
  catalog = {};
  return language;
}

export function t(key, fallback, vars = {}) {
  const text = Object.prototype.hasOwnProperty.call(catalog, key) ? catalog[key] : fallback;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
