// The task page: look at the image, describe it out loud, listen back, submit; the outbox makes sure
// the take reaches the server exactly once, whatever happens to the network or the page.

import { ApiError, get, logout, me, navLinks, post } from "./api.js";
import { applyDirection, errorText, loadCatalog, t, timeOfDay, tn, translatePage } from "./i18n.js";
import { Outbox } from "./outbox.js";
import { Pointing } from "./pointing.js";
import { MicError, QUIET_PEAK, QUIET_SPEECH_DBFS, Recorder, TAIL_MS, playTake } from "./recorder.js";

const $ = (id) => document.getElementById(id);
const RENEW_EVERY_MS = 5 * 60 * 1000;
const SILENT_WARNING_AFTER_S = 3;
const QUIET_WARNING_AFTER_S = 2.5;
const quietMessage = () => t("mic.quiet", "You sound quiet: speak up or move closer to the microphone.");

const recorder = new Recorder();
const outbox = new Outbox();

const page = {
  state: "loading", // loading | idle | recording | stopping | take | uploading | done
  task: null,
  take: null, // {blob, type, seconds, peak, uuid?, rejected?}
  player: null,
  skipReasons: [],
  limits: null,
  waiting: { count: 0, retryAt: 0 }, // takes in the outbox not yet on the server
  language: null, // the interface language applied (the task API names it)
  user: null,
};

// ---------- small helpers ----------

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function startOfToday() {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
}

function setState(state) {
  page.state = state;
  document.body.dataset.state = state;
  render();
}

function showMessage(element, text, kind = "error") {
  if (!text) {
    element.hidden = true;
    element.textContent = "";
    return;
  }
  element.className = `alert alert-${kind}`;
  element.textContent = text;
  element.hidden = false;
}

function banner(text, kind = "info") {
  const element = $("banner");
  if (!text) {
    element.hidden = true;
    return;
  }
  element.className = `banner banner-${kind}`;
  element.textContent = text;
  element.hidden = false;
}

// What an API refusal of a take means, in the page's language, with what the page knows about it.
function refusal(error, seconds) {
  const project = page.task ? page.task.project : null;
  const mb = page.limits ? (page.limits.max_upload_bytes / 1024 / 1024).toFixed(0) : "?";
  return errorText(error, {
    seconds: seconds === undefined ? "?" : seconds.toFixed(1),
    min: project ? clock(project.min_seconds) : "?",
    max: project ? clock(project.max_seconds) : "?",
    mb,
  });
}

// The page's strings in the project's interface language, and its direction, before it is shown.
async function useLanguage(code, direction) {
  if (page.language === code) return;
  await loadCatalog(code);
  applyDirection(code, direction);
  translatePage();
  if (page.user) $("nav").replaceChildren(...navLinks(page.user, "/task"));
  page.language = code;
  if (page.task) render(); // strings the state drew (Record, Submit, the timer hint)
}

function reveal() {
  document.documentElement.dataset.i18n = "ready";
}

function renderToday(today) {
  if (!today) return;
  $("today").textContent = t("today.summary", "Today: {recordings} described · {skipped} skipped · {time}", {
    recordings: today.recordings,
    skipped: today.skipped,
    time: clock(today.seconds),
  });
  $("today").dataset.recordings = today.recordings;
}

// ---------- the task ----------

async function loadNext() {
  setState("loading");
  stopPlayback();
  page.take = null;
  showMessage($("take-message"), "");
  let answer;
  try {
    answer = await post("/api/tasks/next", { since: startOfToday() });
  } catch (error) {
    reveal();
    if (error instanceof ApiError && error.retryable) {
      banner(t("banner.trying_again", "{message} Trying again…", { message: errorText(error) }), "warn");
      setTimeout(loadNext, 3000);
      return;
    }
    banner(errorText(error), "error");
    return;
  }
  await useLanguage(answer.interface_language || "en", answer.direction);
  reveal();
  banner("");
  page.limits = answer.limits;
  page.skipReasons = answer.skip_reasons;
  renderToday(answer.today);
  if (!answer.task) {
    page.task = null;
    $("done-message").textContent = t("done.message", answer.message);
    setState("done");
    return;
  }
  showTask(answer.task);
  await restoreTakeFromOutbox();
}

function showTask(task) {
  page.task = task;
  const { project, image } = task;
  $("project-name").textContent = project.name;
  $("instructions").textContent = project.instructions;
  const questions = $("questions");
  questions.replaceChildren(
    ...project.questions.map((q) => {
      const li = document.createElement("li");
      li.dir = "auto"; // a lead's question may be in another script than the page
      li.textContent = q;
      return li;
    }),
  );
  $("max-time").textContent = clock(project.max_seconds);
  $("progress-min").style.insetInlineStart = `${(100 * project.min_seconds) / project.max_seconds}%`;
  const img = $("image");
  $("image-error").hidden = true;
  img.dataset.imageId = image.id;
  img.onload = () => viewer.fit();
  img.onerror = () => ($("image-error").hidden = false);
  img.src = image.url;
  renderSkipReasons();
  pointing.configure({ ...task, limits: page.limits });
  setState("idle");
}

// A take of this task still in the outbox (the page was reloaded mid-upload, or it was refused).
async function restoreTakeFromOutbox() {
  const items = (await outbox.all()).filter((item) => item.assignmentId === page.task.assignment_id);
  const item = items[items.length - 1];
  if (!item) return;
  page.take = {
    blob: new Blob([item.data], { type: item.contentType }),
    type: item.contentType,
    seconds: item.seconds,
    peak: item.peak,
    uuid: item.uuid,
    rejected: item.state === "rejected" ? item.error : null,
  };
  pointing.restore(item.pointing);
  if (item.state === "rejected") {
    showMessage($("take-message"), refusal(item.error, item.seconds));
    setState("take");
  } else {
    setState("uploading");
    outbox.kick(true);
  }
}

// ---------- recording ----------

async function startRecording() {
  if (!page.task || !["idle", "take"].includes(page.state)) return;
  stopPlayback();
  showMessage($("mic-message"), "");
  try {
    await recorder.open();
  } catch (error) {
    showMessage($("mic-message"), error instanceof MicError ? error.message : String(error));
    $("mic-state").textContent = t("mic.state.unavailable", "unavailable");
    return;
  }
  await discardTake();
  recorder.start();
  setState("recording");
  tick();
}

async function stopRecording({ auto = false } = {}) {
  if (page.state !== "recording") return;
  setState("stopping");
  const take = await recorder.stop({ tail: !auto });
  recorder.close(); // the microphone is released between takes; Record opens it again
  page.take = { ...take, uuid: null, rejected: null };
  pointing.endTake(take.seconds);
  const { min_seconds: min } = page.task.project;
  if (take.peak < QUIET_PEAK) {
    showMessage(
      $("take-message"),
      t(
        "take.silent",
        "We could not hear anything in this take. Check that your microphone is not muted, then re-record.",
      ),
    );
  } else if (page.limits && take.blob.size > page.limits.max_upload_bytes) {
    const mb = (page.limits.max_upload_bytes / 1024 / 1024).toFixed(0);
    showMessage(
      $("take-message"),
      t("take.too_large", "This take is larger than the {mb} MB limit. Please record a shorter description.", { mb }),
    );
  } else if (take.seconds < min) {
    const text = t(
      "take.too_short",
      "This take is {seconds} s; please speak for at least {min}. Re-record to try again.",
      { seconds: take.seconds.toFixed(1), min: clock(min) },
    );
    showMessage($("take-message"), text, "warn");
  } else if (auto) {
    const text = t(
      "take.max_reached",
      "You reached the maximum length, so recording stopped. Listen back, then submit.",
    );
    showMessage($("take-message"), text, "info");
  } else {
    showMessage($("take-message"), "");
  }
  setState("take");
}

function tick() {
  if (page.state !== "recording") return;
  const elapsed = recorder.elapsedSeconds();
  const { max_seconds: max } = page.task.project;
  renderTimer(elapsed);
  renderMicWarning(elapsed);
  // Stop so that the take, tail included, ends at the maximum.
  if (elapsed >= max - TAIL_MS / 1000) {
    stopRecording({ auto: true });
    return;
  }
  requestAnimationFrame(tick);
}

// Live warnings while recording: nothing heard at all (muted), or speech too quiet to transcribe well.
function renderMicWarning(elapsed) {
  const message = $("mic-message");
  const heard = recorder.takePeak >= QUIET_PEAK;
  if (elapsed >= SILENT_WARNING_AFTER_S && !heard) {
    showMessage(message, t("mic.cannot_hear", "We can't hear you. Is your microphone muted or turned down?"), "warn");
  } else if (elapsed >= QUIET_WARNING_AFTER_S && heard && recorder.takeLoudestDbfs < QUIET_SPEECH_DBFS) {
    if (message.textContent !== quietMessage()) showMessage(message, quietMessage(), "warn");
  } else if (!message.hidden && heard && recorder.takeLoudestDbfs >= QUIET_SPEECH_DBFS) {
    showMessage(message, "");
  }
}

function renderTimer(seconds) {
  const { min_seconds: min, max_seconds: max } = page.task.project;
  $("elapsed").textContent = clock(seconds);
  const fill = $("progress-fill");
  fill.style.width = `${Math.min(100, (100 * seconds) / max)}%`;
  fill.dataset.zone = seconds < min ? "short" : seconds > max * 0.9 ? "late" : "ok";
  $("timer-hint").textContent =
    seconds < min
      ? t("timer.at_least", "Speak for at least {min}.", { min: clock(min) })
      : seconds > max * 0.9
        ? t("timer.nearly_max", "Nearly at the maximum.")
        : t("timer.good", "Good length. Stop when you are done.");
}

recorder.addEventListener("level", (event) => {
  const { level } = event.detail;
  $("meter-fill").style.width = `${Math.round(level * 100)}%`;
  $("meter-fill").dataset.level = level.toFixed(3);
  $("mic-state").textContent = !recorder.isOpen
    ? t("mic.state.off", "off")
    : page.state === "recording"
      ? t("mic.state.recording", "recording")
      : t("mic.state.on", "on");
});
recorder.addEventListener("error", (event) => {
  showMessage($("mic-message"), event.detail.message);
  if (page.state === "recording") stopRecording();
  else recorder.close();
});

async function discardTake() {
  stopPlayback();
  if (page.take && page.take.uuid && page.take.rejected) await outbox.remove(page.take.uuid);
  page.take = null;
  pointing.reset(); // a re-recorded take starts clean: no trace, no points
  showMessage($("take-message"), "");
}

// ---------- playback ----------

async function togglePlayback() {
  if (!page.take) return;
  if (page.player) {
    stopPlayback();
    return;
  }
  try {
    const player = await playTake(recorder.audioContext(), page.take.blob);
    page.player = player;
    document.body.dataset.playing = "true";
    $("play").textContent = t("take.stop", "■ Stop");
    player.ended.then(() => {
      if (page.player === player) stopPlayback();
      document.body.dataset.played = "true";
    });
  } catch (error) {
    showMessage($("take-message"), t("take.cannot_play", "This take cannot be played back: {message}", { message: error.message }));
  }
}

function stopPlayback() {
  if (page.player) page.player.stop();
  page.player = null;
  delete document.body.dataset.playing;
  $("play").textContent = t("take.play", "▶ Play");
}

// ---------- submit and skip ----------

function canSubmit() {
  const take = page.take;
  return (
    page.state === "take" &&
    take &&
    !take.rejected &&
    take.peak >= QUIET_PEAK &&
    take.seconds >= page.task.project.min_seconds &&
    (!page.limits || take.blob.size <= page.limits.max_upload_bytes) &&
    pointing.ready()
  );
}

async function submit() {
  if (!canSubmit()) return;
  stopPlayback();
  setState("uploading");
  const take = page.take;
  let item;
  try {
    item = await outbox.add({
    assignmentId: page.task.assignment_id,
    imageId: page.task.image.id,
    blob: take.blob,
    contentType: take.type,
      seconds: take.seconds,
      peak: take.peak,
      pointing: pointing.payload(take.seconds),
    });
  } catch (error) {
    showMessage($("take-message"), errorText(error));
    setState("take");
    return;
  }
  take.uuid = item.uuid;
  outbox.kick(true);
}

outbox.addEventListener("uploaded", (event) => {
  const { item, recording } = event.detail;
  renderSaved(recording);
  if (page.take && page.take.uuid === item.uuid) {
    banner("");
    loadNext();
  } else {
    refreshToday();
  }
});

// A line that stays until the next save: what was saved last, and when.
function renderSaved(recording) {
  const line = t("saved.line", "✓ Saved: {seconds} s description at {time}.", {
    seconds: recording.duration_seconds.toFixed(0),
    time: timeOfDay(new Date()),
  });
  const quiet = (recording.qc_flags || []).includes("quiet")
    ? ` ${t("saved.quiet", "It was quiet: next time, move closer to the microphone.")}`
    : "";
  $("saved").textContent = `${line}${quiet}`;
  $("saved").hidden = false;
}

// How many takes wait on this device for the server, and when the next try is.
function renderOutboxState() {
  const { count, retryAt } = page.waiting;
  const element = $("outbox-state");
  element.hidden = count === 0;
  if (!count) return;
  const seconds = Math.ceil((retryAt - Date.now()) / 1000);
  element.textContent =
    seconds > 0
      ? tn(
          "outbox.waiting_in",
          count,
          {
            one: "{count} take waiting, will retry in {seconds} s. They are safe on this device.",
            other: "{count} takes waiting, will retry in {seconds} s. They are safe on this device.",
          },
          { seconds },
        )
      : tn("outbox.waiting_now", count, {
          one: "{count} take waiting, will retry. They are safe on this device.",
          other: "{count} takes waiting, will retry. They are safe on this device.",
        });
}
setInterval(() => page.waiting.count && renderOutboxState(), 1000);

outbox.addEventListener("retry", (event) => {
  const { item, delayMs } = event.detail;
  page.waiting.retryAt = Date.now() + delayMs;
  renderOutboxState();
  const mine = page.take && page.take.uuid === item.uuid;
  const vars = { seconds: Math.ceil(delayMs / 1000), attempt: item.attempts + 1 };
  const text = mine
    ? t(
        "banner.retry_mine",
        "Your take is saved on this device. The server cannot be reached; trying again in {seconds} s (attempt {attempt}).",
        vars,
      )
    : t(
        "banner.retry_earlier",
        "An earlier take is saved on this device. The server cannot be reached; trying again in {seconds} s (attempt {attempt}).",
        vars,
      );
  banner(text, "warn");
});

outbox.addEventListener("rejected", (event) => {
  const { item, error } = event.detail;
  if (page.take && page.take.uuid === item.uuid) {
    page.take.rejected = item.error;
    showMessage($("take-message"), refusal(error, item.seconds));
    setState("take");
  } else {
    banner(t("banner.earlier_refused", "An earlier take was refused: {message}", { message: refusal(error, item.seconds) }), "error");
  }
});

outbox.addEventListener("changed", (event) => {
  const others = event.detail.pending.filter((item) => !page.take || item.uuid !== page.take.uuid);
  document.body.dataset.pendingUploads = event.detail.pending.length;
  // A take counts as waiting once an upload of it failed (not while its first upload runs).
  page.waiting.count = event.detail.pending.filter((item) => item.attempts > 0).length;
  renderOutboxState();
  if (others.length && page.state !== "uploading") {
    const text = tn("banner.earlier_waiting", others.length, {
      one: "{count} earlier take is waiting to upload; this page keeps trying.",
      other: "{count} earlier takes are waiting to upload; this page keeps trying.",
    });
    banner(text, "warn");
  }
});

async function refreshToday() {
  try {
    renderToday(await get(`/api/tasks/today?since=${encodeURIComponent(startOfToday())}`));
  } catch {
    // the counter can wait
  }
}

function renderSkipReasons() {
  const fieldset = $("skip-reasons");
  fieldset.replaceChildren(
    ...page.skipReasons.map((reason, index) => {
      const label = document.createElement("label");
      label.className = "radio";
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "skip-reason";
      input.value = reason.code;
      input.checked = false; // no preselected reason: a default would bias the data
      input.addEventListener("change", () => showMessage($("skip-error"), ""));
      label.append(input, ` ${t(`skip.reason.${reason.code}`, reason.label)}`);
      return label;
    }),
  );
}

$("skip-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!page.task || ["recording", "stopping", "uploading"].includes(page.state)) return;
  const reason = document.querySelector("input[name=skip-reason]:checked");
  if (!reason) {
    showMessage($("skip-error"), t("skip.choose_reason", "Choose a reason for skipping this image."));
    return;
  }
  if (reason.value === "other" && !$("skip-note").value.trim()) {
    showMessage($("skip-error"), t("skip.note_required", "Please say briefly why you are skipping this image."));
    $("skip-note").focus();
    return;
  }
  const confirmText = t("skip.confirm", "Skip this image and throw away the take you recorded?");
  if (page.take && !page.take.uuid && !window.confirm(confirmText)) return;
  showMessage($("skip-error"), "");
  try {
    const today = await post(`/api/tasks/${page.task.assignment_id}/skip`, {
      reason: reason.value,
      note: $("skip-note").value,
      since: startOfToday(),
    });
    renderToday(today);
    $("skip").open = false;
    $("skip-note").value = "";
    await discardTake();
    loadNext();
  } catch (error) {
    showMessage($("skip-error"), errorText(error));
  }
});

// ---------- rendering ----------

function render() {
  const { state, take } = page;
  $("task").hidden = state === "done" || (state === "loading" && !page.task);
  $("done").hidden = state !== "done";
  const record = $("record");
  record.disabled = !["idle", "take", "recording"].includes(state);
  record.classList.toggle("is-recording", state === "recording");
  record.setAttribute("aria-pressed", String(state === "recording"));
  $("record-label").textContent =
    state === "recording"
      ? t("recorder.stop", "Stop")
      : state === "stopping"
        ? t("recorder.saving", "Saving…")
        : take
          ? t("recorder.record_again", "Record again")
          : t("recorder.record", "Record");
  $("take").hidden = !take || state === "recording";
  $("play").disabled = !take || state === "uploading";
  $("rerecord").disabled = !take || state === "uploading";
  if (take) {
    const kb = Math.round(take.blob.size / 1024);
    $("take-info").textContent = t("take.info", "{seconds} s · {kb} KB", { seconds: take.seconds.toFixed(1), kb });
    if (state !== "recording") renderTimer(take.seconds);
  } else if (page.task && state !== "recording") {
    renderTimer(0);
  }
  const submitButton = $("submit");
  submitButton.disabled = !canSubmit();
  $("submit-label").textContent = state === "uploading" ? t("submit.uploading", "Uploading…") : t("submit.label", "Submit");
  pointing.render(state);
}

// ---------- image zoom and pan ----------

const viewer = (() => {
  const viewport = $("viewport");
  const img = $("image");
  let scale = 1;
  let fitScale = 1;
  let x = 0;
  let y = 0;
  let drag = null;
  // Pointing modes (web/js/pointing.js) decide which presses pan and turn off double-click zoom.
  const options = { pan: () => true, dblclickZoom: true };

  function apply() {
    img.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
    $("zoom-level").textContent = `${Math.round(scale * 100)}%`;
    viewport.dispatchEvent(new Event("viewchange")); // overlays follow zoom and pan
  }

  function panBy(dx, dy) {
    x += dx;
    y += dy;
    apply();
  }

  function fit() {
    const { clientWidth: vw, clientHeight: vh } = viewport;
    const iw = img.naturalWidth || 1;
    const ih = img.naturalHeight || 1;
    fitScale = Math.min(vw / iw, vh / ih);
    scale = fitScale;
    x = (vw - iw * scale) / 2;
    y = (vh - ih * scale) / 2;
    apply();
  }

  function zoomAt(factor, px, py) {
    const next = Math.min(Math.max(scale * factor, fitScale * 0.5), Math.max(8, fitScale * 8));
    x = px - ((px - x) * next) / scale;
    y = py - ((py - y) * next) / scale;
    scale = next;
    apply();
  }

  function zoomCentre(factor) {
    zoomAt(factor, viewport.clientWidth / 2, viewport.clientHeight / 2);
  }

  viewport.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = viewport.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX - rect.left, event.clientY - rect.top);
    },
    { passive: false },
  );
  viewport.addEventListener("pointerdown", (event) => {
    if (!options.pan(event)) return;
    drag = { id: event.pointerId, sx: event.clientX, sy: event.clientY, x, y };
    viewport.setPointerCapture(event.pointerId);
    viewport.classList.add("dragging");
  });
  viewport.addEventListener("pointermove", (event) => {
    if (!drag || drag.id !== event.pointerId) return;
    x = drag.x + event.clientX - drag.sx;
    y = drag.y + event.clientY - drag.sy;
    apply();
  });
  const end = () => {
    drag = null;
    viewport.classList.remove("dragging");
  };
  viewport.addEventListener("pointerup", end);
  viewport.addEventListener("pointercancel", end);
  viewport.addEventListener("dblclick", (event) => {
    if (!options.dblclickZoom) return;
    const rect = viewport.getBoundingClientRect();
    zoomAt(2, event.clientX - rect.left, event.clientY - rect.top);
  });
  window.addEventListener("resize", () => fit());
  $("zoom-in").addEventListener("click", () => zoomCentre(1.25));
  $("zoom-out").addEventListener("click", () => zoomCentre(0.8));
  $("zoom-fit").addEventListener("click", fit);
  return { fit, zoomCentre, zoomAt, panBy, options };
})();

const pointing = new Pointing({
  viewport: $("viewport"),
  img: $("image"),
  viewer,
  panel: $("pointing"),
  clock: (timeStamp) => recorder.audioSeconds(timeStamp),
  onChange: () => render(),
});

// ---------- keys and buttons ----------

function typing(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.code === "Space") {
    event.preventDefault(); // not a page scroll, and not a click on the focused button
    if (event.repeat) return;
    if (page.state === "recording") stopRecording();
    else if (page.state === "idle") startRecording();
    else if (page.state === "take") {
      showMessage($("mic-message"), t("mic.have_take", "You have a take. Press R to re-record it, or Enter to submit."), "info");
    }
  } else if (event.key === "Enter") {
    if (event.target.closest && event.target.closest("#skip")) return;
    event.preventDefault();
    submit();
  } else if (event.code === "KeyP" || event.key === "p" || event.key === "P") {
    // event.code: the key marked P whatever the layout (an Arabic layout's P key types "ح")
    togglePlayback();
  } else if (event.code === "KeyR" || event.key === "r" || event.key === "R") {
    if (page.take && page.state === "take") startRecording();
  } else if (event.key === "+" || event.key === "=") {
    viewer.zoomCentre(1.25);
  } else if (event.key === "-") {
    viewer.zoomCentre(0.8);
  } else if (event.key === "0") {
    viewer.fit();
  }
});
document.addEventListener("keyup", (event) => {
  if (event.code === "Space" && !typing(event.target)) event.preventDefault();
});

$("record").addEventListener("click", () => (page.state === "recording" ? stopRecording() : startRecording()));
$("play").addEventListener("click", togglePlayback);
$("rerecord").addEventListener("click", startRecording);
$("submit").addEventListener("click", submit);
$("check-again").addEventListener("click", loadNext);
$("logout").addEventListener("click", logout);

window.addEventListener("beforeunload", (event) => {
  // Takes in the outbox are safe; only an unsubmitted take (or one being recorded) would be lost.
  if (page.state === "recording" || (page.state === "take" && page.take && !page.take.uuid)) {
    event.preventDefault();
    event.returnValue = "";
  }
});

setInterval(async () => {
  if (!page.task || page.state === "done") return;
  try {
    await post(`/api/tasks/${page.task.assignment_id}/renew`);
  } catch {
    // the next submit or reload sorts it out
  }
}, RENEW_EVERY_MS);

// ---------- start ----------

async function main() {
  const user = await me();
  page.user = user;
  $("user-name").textContent = user.name;
  $("nav").replaceChildren(...navLinks(user, "/task"));
  $("nav").hidden = user.role === "annotator";
  await loadNext(); // first: its answer names the interface language the outbox's messages are in
  outbox.start();
}

main().catch((error) => {
  reveal();
  banner(errorText(error), "error");
});
