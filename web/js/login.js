import { ApiError, get, isLead, post } from "./api.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const button = document.getElementById("login-button");
const nameInput = document.getElementById("name");
const passwordInput = document.getElementById("password");

function sameOriginPath(next) {
  // Parse as the browser will navigate (it drops tabs and reads a backslash as "/"), then compare
  // origins: string checks miss "/%5Cevil.example/" and "/%09/evil.example/".
  if (!next) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin || url.pathname.startsWith("/login")) return null;
  return url.pathname + url.search + url.hash;
}

function destination(user) {
  const next = sameOriginPath(new URLSearchParams(location.search).get("next"));
  return next || (isLead(user) ? "/review" : "/task");
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const name = nameInput.value.trim();
  const password = passwordInput.value;
  if (!name || !password) {
    showError("Enter your name and password.");
    return;
  }
  button.disabled = true;
  button.textContent = "Logging in…";
  try {
    const user = await post("/api/auth/login", { name, password }, { redirectOn401: false });
    location.assign(destination(user));
  } catch (error) {
    showError(error instanceof ApiError ? error.message : String(error));
    passwordInput.select();
  } finally {
    button.disabled = false;
    button.textContent = "Log in";
  }
});

// Already logged in (a bookmarked /login): go straight on.
get("/api/me", { redirectOn401: false }).then(
  (user) => location.assign(destination(user)),
  () => {},
);
