// Admin: create and edit projects, add images by drag-and-drop or zip, manage annotators.
import { api, el, errorText, renderTopbar, requireLead, toast } from "./lead.js";

const $ = (id) => document.getElementById(id);

const state = { me: null, projects: [], selected: null };

// --- projects ----------------------------------------------------------------------------------------

async function loadProjects(selectId = state.selected) {
  state.projects = (await api("/api/admin/projects")).projects;
  $("project-list").replaceChildren(
    ...state.projects.map((p) =>
      el(
        "li",
        { class: p.id === selectId ? "selected" : "", dataset: { id: p.id }, onclick: () => selectProject(p.id) },
        el("span", {}, p.name),
        el("span", { class: "muted" }, `${p.images} images`),
      ),
    ),
  );
  if (!state.projects.length) $("project-list").append(el("li", { class: "muted" }, "No projects yet."));
  const chosen = state.projects.find((p) => p.id === selectId) || state.projects[0];
  if (chosen) selectProject(chosen.id);
  else newProject();
}

function selectProject(id) {
  state.selected = id;
  for (const item of $("project-list").children) item.classList.toggle("selected", Number(item.dataset.id) === id);
  const project = state.projects.find((p) => p.id === id);
  if (project) fillProjectForm(project);
}

function fillProjectForm(project) {
  state.selected = project.id;
  const form = $("project-form");
  form.elements.namedItem("name").value = project.name;
  form.instructions.value = project.instructions;
  form.questions.value = project.questions.join("\n");
  form.min_seconds.value = project.min_seconds;
  form.max_seconds.value = project.max_seconds;
  form.per_image.value = project.per_image;
  form.language.value = project.language;
  form.mode.value = project.mode;
  form.labels.value = (project.labels || []).join("\n");
  form.interface_language.value = project.interface_language || "en";
  form.caption_language.value = project.caption_language || "";
  showLabels();
  $("project-form-title").textContent = `Edit ${project.name}`;
  $("project-save").textContent = "Save changes";
  $("project-status").textContent = "";
  $("images-card").hidden = false;
  $("images-project").textContent = `to ${project.name}`;
}

function newProject() {
  state.selected = null;
  const form = $("project-form");
  form.reset();
  form.instructions.value = "";
  form.questions.value = "";
  showLabels();
  $("project-form-title").textContent = "New project";
  $("project-save").textContent = "Create project";
  $("images-card").hidden = true;
  for (const item of $("project-list").children) item.classList.remove("selected");
  form.elements.namedItem("name").focus();
}

function lines(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

// The labels field belongs to point projects only.
function showLabels() {
  $("labels-field").hidden = $("project-form").mode.value !== "point";
}

// The choices the server accepts: interface languages with a shipped catalog, caption languages.
async function loadLanguages() {
  const { interface: interfaces, caption } = await api("/api/admin/languages");
  $("interface-language").replaceChildren(...interfaces.map((code) => el("option", { value: code }, code)));
  $("caption-languages").replaceChildren(...caption.map((code) => el("option", { value: code })));
}

async function saveProject(event) {
  event.preventDefault();
  const form = $("project-form");
  const questions = lines(form.questions.value);
  const body = {
    name: form.elements.namedItem("name").value.trim(),
    instructions: form.instructions.value.trim(),
    min_seconds: Number(form.min_seconds.value),
    max_seconds: Number(form.max_seconds.value),
    per_image: Number(form.per_image.value),
    language: form.language.value.trim(),
    mode: form.mode.value,
    // Only a point project has labels; switching away from point clears them.
    labels: form.mode.value === "point" ? lines(form.labels.value) : [],
    interface_language: form.interface_language.value,
    caption_language: form.caption_language.value.trim(),
  };
  if (questions.length) body.questions = questions;
  try {
    let saved;
    if (state.selected === null) {
      if (!body.instructions) delete body.instructions;
      saved = await api("/api/admin/projects", { method: "POST", body });
      toast(`Created project ${saved.name}.`);
    } else {
      if (!body.instructions) delete body.instructions;
      saved = await api(`/api/admin/projects/${state.selected}`, { method: "PATCH", body });
      toast(`Saved ${saved.name}.`);
    }
    await loadProjects(saved.id);
  } catch (error) {
    $("project-status").textContent = errorText(error);
    toast(errorText(error), "error");
  }
}

// --- images --------------------------------------------------------------------------------------------

async function uploadFiles(files) {
  if (state.selected === null) {
    toast("Choose or create a project first.", "error");
    return;
  }
  const list = [...files];
  if (!list.length) return;
  const progress = $("upload-progress");
  const log = $("upload-log");
  log.replaceChildren();
  progress.hidden = false;
  progress.max = list.length;
  progress.value = 0;
  const totals = { added: 0, duplicate: 0, rejected: 0 };
  for (const file of list) {
    const line = el("li", {}, `${file.name}: uploading…`);
    log.append(line);
    try {
      const result = await api(
        `/api/admin/projects/${state.selected}/images?filename=${encodeURIComponent(file.name)}`,
        { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } },
      );
      totals.added += result.added;
      totals.duplicate += result.duplicate;
      totals.rejected += result.rejected.length;
      line.replaceChildren(
        `${file.name}: ${result.added} added, ${result.duplicate} duplicate, ${result.rejected.length} rejected`,
        ...result.rejected.map((r) => el("span", { class: "reason" }, `${r.path}: ${r.reason}`)),
      );
    } catch (error) {
      totals.rejected += 1;
      line.replaceChildren(`${file.name}: `, el("span", { class: "reason" }, errorText(error)));
    }
    progress.value += 1;
  }
  progress.hidden = true;
  $("upload-summary").textContent =
    `${totals.added} added, ${totals.duplicate} already there, ${totals.rejected} rejected.`;
  await loadProjects(state.selected);
}

function setUpDropzone() {
  const zone = $("dropzone");
  const input = $("file-input");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    uploadFiles(event.dataTransfer.files);
  });
  input.addEventListener("change", () => {
    uploadFiles(input.files).finally(() => (input.value = ""));
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") input.click();
  });
}

// --- people --------------------------------------------------------------------------------------------

function canManage(user) {
  return state.me.role === "admin" || user.role === "annotator";
}

async function loadUsers() {
  const users = (await api("/api/admin/users")).users;
  const head = el("tr", {}, ["name", "role", "state", "added", ""].map((h) => el("th", { class: "text" }, h)));
  const rows = users.map((user) => {
    const actions = [];
    if (canManage(user) && user.id !== state.me.id) {
      actions.push(
        el(
          "button",
          { type: "button", class: "secondary", onclick: () => setDisabled(user, !user.disabled) },
          user.disabled ? "Enable" : "Disable",
        ),
      );
    }
    if (canManage(user)) {
      actions.push(
        el("button", { type: "button", class: "secondary", onclick: () => resetPassword(user) }, "Reset password"),
      );
    }
    if (canManage(user) || user.id === state.me.id) {
      actions.push(
        el("button", { type: "button", class: "secondary", onclick: () => logOutEverywhere(user) }, "Log out everywhere"),
      );
    }
    return el(
      "tr",
      { dataset: { user: user.name } },
      el("td", { class: "text" }, user.name),
      el("td", { class: "text" }, user.role),
      el("td", { class: "text" }, user.disabled ? "disabled" : "active"),
      el("td", { class: "text" }, user.created_at.slice(0, 10)),
      el("td", { class: "text" }, actions),
    );
  });
  $("users").replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
}

function showSecret(name, password) {
  $("user-secret").replaceChildren(
    `Password for ${name} (shown once; pass it on privately): `,
    el("span", { class: "secret" }, password),
  );
}

async function addUser(event) {
  event.preventDefault();
  const form = $("user-form");
  const body = { name: form.elements.namedItem("name").value.trim(), role: form.role.value };
  if (form.password.value) body.password = form.password.value;
  try {
    const user = await api("/api/admin/users", { method: "POST", body });
    form.reset();
    if (user.password) showSecret(user.name, user.password);
    else $("user-secret").textContent = `Added ${user.name}.`;
    await loadUsers();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function setDisabled(user, disabled) {
  try {
    await api(`/api/admin/users/${encodeURIComponent(user.name)}/${disabled ? "disable" : "enable"}`, {
      method: "POST",
    });
    toast(`${user.name} ${disabled ? "disabled" : "enabled"}.`);
    await loadUsers();
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function resetPassword(user) {
  if (!window.confirm(`Give ${user.name} a new password? The old one stops working.`)) return;
  try {
    const result = await api(`/api/admin/users/${encodeURIComponent(user.name)}/reset-password`, {
      method: "POST",
    });
    showSecret(result.name, result.password);
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function logOutEverywhere(user) {
  const self = user.id === state.me.id;
  if (!window.confirm(`End every session of ${self ? "yours, this one included" : user.name}?`)) return;
  try {
    if (self) {
      await api("/api/auth/logout-everywhere", { method: "POST" });
      location.assign("/login");
      return;
    }
    const result = await api(`/api/admin/users/${encodeURIComponent(user.name)}/logout`, { method: "POST" });
    toast(`${result.name}: ${result.sessions_ended} session(s) ended.`);
  } catch (error) {
    toast(errorText(error), "error");
  }
}

async function main() {
  state.me = await requireLead();
  renderTopbar(state.me);
  if (state.me.role === "admin") {
    $("user-role").append(el("option", { value: "lead" }, "lead"), el("option", { value: "admin" }, "admin"));
  }
  $("project-form").addEventListener("submit", saveProject);
  $("new-project").addEventListener("click", newProject);
  $("user-form").addEventListener("submit", addUser);
  $("project-mode").addEventListener("change", showLabels);
  setUpDropzone();
  await loadLanguages(); // before a project's languages are put in the form
  await Promise.all([loadProjects(), loadUsers()]);
}

main().catch((error) => {
  if (error.message !== "not a lead" && error.code !== "not_authenticated") toast(errorText(error), "error");
});
