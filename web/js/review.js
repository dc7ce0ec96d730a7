// The review page: a filtered queue of captions; for each the image, the take with its words lit as they
// are spoken, the transcript, the caption with its diff, and the decision keys.
import { alignWords, diffSummary, renderDiff, tokens, wordDiff } from "./diff.js";
import { api, el, errorText, fillSelect, fmt, renderTopbar, requireLead, toast } from "./lead.js";
import { hidePointing, setUpPointing, showPointing, syncPointing } from "./pointing_review.js";

const $ = (id) => document.getElementById(id);
const FILTERS = ["project", "annotator", "flag", "qc", "sort", "state"];
const PAGE = 100;
// Reject reasons a number key chooses; a typed note is added to (or, alone, replaces) the reason.
const REJECT_PRESETS = [
  "The caption does not describe this image",
  "The caption says things the speaker did not say",
  "The transcript is wrong: the speech was misheard",
  "Too short or too vague to be useful",
  "The audio is unusable (noise, silence or another voice)",
];

const state = {
  items: [], // queue rows
  index: -1, // selected row
  nextAfter: null,
  total: 0,
  detail: null, // the selected caption's detail
  words: [], // [{start, end, node}]
  lit: -1, // the word lit now
  drafts: new Map(), // caption id -> unsaved text, so j/k does not lose an edit
  busy: false,
  editing: false, // the caption is a textarea only while editing (e); keys are shortcuts otherwise
  showDiff: false,
  attention: null, // the selected caption's attention flags
  unsureBelow: 0.5, // a word heard with a lower probability is underlined
};

// --- queue ---------------------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $(`f-${name}`).value;
    if (value) params.set(name, value);
  }
  return params;
}

async function loadChoices() {
  const choices = await api("/api/review/choices");
  fillSelect($("f-project"), choices.projects.map((p) => ({ value: p.id, label: p.name })), { any: "All projects" });
  fillSelect($("f-annotator"), choices.annotators.map((a) => ({ value: a.id, label: a.name })), { any: "Everyone" });
  const fixed = [
    { value: "flagged", label: "Flagged" },
    { value: "unflagged", label: "Not flagged" },
  ];
  const named = choices.flags.map((f) => ({ value: f, label: `Flag: ${f.replaceAll("_", " ")}` }));
  fillSelect($("f-flag"), [...fixed, ...named], { any: "Any" });
  const qcFlags = choices.qc_flags.map((f) => ({ value: f, label: f.replaceAll("_", " ") }));
  fillSelect($("f-qc"), [{ value: "any", label: "Any QC flag" }, ...qcFlags], { any: "Any" });
}

// One page of the queue, oldest first (keyset paging) or worst first (offset paging).
async function fetchPage(more) {
  const params = filterParams();
  const sort = params.get("sort");
  params.delete("sort");
  params.set("limit", PAGE);
  if (sort === "attention") {
    if (more) params.set("offset", state.items.length);
    const page = await api(`/api/review/attention-queue?${params}`);
    return { items: page.items, total: page.total, next: page.next_offset };
  }
  if (more) params.set("after", state.nextAfter);
  const page = await api(`/api/review/queue?${params}`);
  return { items: page.items, total: page.total, next: page.next_after };
}

async function loadQueue({ keep = null } = {}) {
  const page = await fetchPage(false);
  state.items = page.items;
  state.total = page.total;
  state.nextAfter = page.next;
  renderQueue();
  const wanted = keep ?? Number(new URLSearchParams(location.search).get("caption")) ?? null;
  const found = state.items.findIndex((item) => item.id === wanted);
  await select(found >= 0 ? found : 0);
}

async function loadMore() {
  if (state.nextAfter === null) return;
  const page = await fetchPage(true);
  state.items.push(...page.items);
  state.nextAfter = page.next;
  renderQueue();
}

function renderQueue() {
  const list = $("queue-list");
  list.replaceChildren(
    ...state.items.map((item, index) =>
      el(
        "li",
        {
          class: ["queue-item", item.flagged ? "flagged" : "", index === state.index ? "selected" : ""].join(" "),
          dataset: { id: item.id },
          onclick: () => select(index),
        },
        el(
          "div",
          { class: "queue-line" },
          el("strong", {}, `#${item.id}`),
          el("span", {}, item.annotator || item.kind),
          item.faithfulness !== null ? el("span", { class: "score" }, item.faithfulness.toFixed(2)) : null,
          item.status !== "pending" ? el("span", { class: `badge ${item.status}` }, item.status) : null,
        ),
        item.flags.length || item.attention?.flags.length
          ? el("div", { class: "queue-flags" }, (item.attention?.flags || []).map(attentionBadge), item.flags.map(flagBadge))
          : null,
        el("div", { class: "preview" }, item.preview),
      ),
    ),
  );
  const shown = state.items.length;
  $("queue-count").textContent =
    state.total === 0 ? "No captions match." : `${state.total} caption${state.total === 1 ? "" : "s"}` +
      (shown < state.total ? ` (${shown} loaded)` : "");
  $("queue-more").hidden = state.nextAfter === null;
  const pending = pendingShown().length;
  $("batch-approve").hidden = pending === 0;
  $("batch-approve").textContent = `Approve all ${pending} shown…`;
}

function pendingShown() {
  return state.items.filter((item) => item.status === "pending");
}

function attentionBadge(flag) {
  return el("span", { class: "badge attention" }, flag.replaceAll("_", " "));
}

function flagBadge(flag) {
  const name = typeof flag === "string" ? flag : flag.code || flag.name || JSON.stringify(flag);
  const mismatch = /^language_mismatch:([\w-]+)!=([\w-]+)$/.exec(name); // transcribe/language_policy.py
  if (mismatch) return el("span", { class: "badge flag" }, `spoke ${mismatch[1]} in a project set to ${mismatch[2]}`);
  const translation = /^(un)?translated:([\w-]+)->([\w-]+)$/.exec(name); // transcribe/stages/captions.py
  if (translation) {
    const [, not, from, to] = translation;
    const text = not ? `left in ${from}: ${to} was asked, the rules cleaner cannot translate` : `translated from ${from} to ${to}: check it`;
    return el("span", { class: "badge flag" }, text);
  }
  return el("span", { class: "badge flag" }, name.replaceAll("_", " "));
}

// --- one caption -------------------------------------------------------------------------------------

async function select(index) {
  leaveEdit();
  saveDraft();
  if (index < 0 || index >= state.items.length) {
    state.index = -1;
    state.detail = null;
    $("item-body").hidden = true;
    $("empty").hidden = false;
    stopAudio();
    hidePointing();
    renderQueue();
    return;
  }
  state.index = index;
  renderQueue();
  const id = state.items[index].id;
  const url = new URL(location.href);
  url.searchParams.set("caption", id);
  history.replaceState(null, "", url);
  try {
    const [detail, attention] = await Promise.all([
      api(`/api/review/captions/${id}`),
      api(`/api/review/captions/${id}/attention`).catch(() => null),
    ]);
    if (state.items[state.index]?.id !== id) return; // the reviewer moved on meanwhile
    state.detail = detail;
    state.attention = attention;
    if (attention) state.unsureBelow = attention.unsure_below;
    renderDetail(detail);
  } catch (error) {
    toast(`Could not load caption ${id}: ${errorText(error)}`, "error");
  }
  document.querySelector(".queue-item.selected")?.scrollIntoView({ block: "nearest" });
}

function renderDetail(detail) {
  const { caption, image, recording, transcript } = detail;
  $("empty").hidden = true;
  $("item-body").hidden = false;
  $("item-title").textContent = `Caption #${caption.id}`;
  $("item-meta").textContent = [
    image.project,
    recording ? `by ${recording.annotator}` : `${caption.kind} caption`,
    `${caption.kind}, ${caption.status}`,
    `cleaner ${caption.cleaner}${caption.model ? ` (${caption.model})` : ""}${caption.prompt_version ? ` · prompt ${caption.prompt_version}` : ""}`,
  ].join(" · ");
  const img = $("image");
  img.src = `/api/images/${image.id}/original`;
  $("image-meta").textContent = `Image ${image.id} · ${image.width}×${image.height} · ${image.source}`;

  stopAudio();
  const audio = $("audio");
  if (recording) {
    audio.hidden = false;
    audio.src = recording.audio_url;
    $("qc").replaceChildren(
      ...[
        ["seconds", fmt(recording.duration_seconds)],
        ["silence", `${Math.round(recording.silence_fraction * 100)}%`],
        ["loudness", `${fmt(recording.loudness_dbfs)} dBFS`],
        transcript ? ["words/min", fmt(transcript.words_per_minute, 0)] : null,
        transcript ? ["transcript words", transcript.word_count] : null,
        ["caption words", caption.word_count],
        ["faithfulness", caption.faithfulness === null ? "–" : caption.faithfulness.toFixed(2)],
        ["revision", recording.revision],
      ]
        .filter(Boolean)
        .map(([label, value]) => el("span", { class: "figure" }, el("b", {}, String(value)), ` ${label}`)),
    );
  } else {
    audio.hidden = true;
    audio.removeAttribute("src");
    $("qc").replaceChildren();
  }
  renderTranscript(transcript);
  const text = $("caption-text");
  text.value = state.drafts.get(caption.id) ?? caption.text;
  text.readOnly = caption.status === "superseded";
  renderFlags(caption, transcript);
  updateDiff();
  renderCaptionView();
  renderHistory(detail.history);
  hideReason();
  const final = caption.status === "superseded";
  for (const id of ["approve", "reject", "retranscribe", "reclean"]) $(id).disabled = final;
  const noTake = !recording;
  $("retranscribe").disabled ||= noTake;
  $("reclean").disabled ||= noTake;
  showPointing(detail); // narrate and point takes: their points and trace over the image
}

function renderTranscript(transcript) {
  const box = $("transcript");
  state.words = [];
  state.lit = -1;
  if (!transcript) {
    box.replaceChildren(el("span", { class: "muted" }, "No transcript (a merged caption)."));
    return;
  }
  if (!transcript.words.length) {
    box.textContent = transcript.text;
    return;
  }
  const nodes = [];
  transcript.words.forEach((word, index) => {
    const node = el(
      "span",
      { class: "word", dataset: { index }, title: `${word.start.toFixed(2)} s` },
      word.word.trim(),
    );
    if (word.probability !== null && word.probability !== undefined && word.probability < state.unsureBelow) {
      node.classList.add("unsure");
    }
    state.words.push({ start: word.start, end: word.end, node });
    nodes.push(node, " ");
  });
  box.replaceChildren(...nodes);
}

function renderFlags(caption, transcript) {
  const items = (state.attention?.flags || []).map(attentionBadge);
  for (const flag of caption.flags || []) items.push(flagBadge(flag));
  for (const flag of transcript?.flags || []) items.push(flagBadge(flag));
  if (caption.unsupported_words?.length) {
    items.push(
      el(
        "span",
        { class: "unsupported" },
        "Not in the transcript: ",
        caption.unsupported_words.map((w) => el("mark", {}, typeof w === "string" ? w : JSON.stringify(w))),
      ),
    );
  }
  $("flags").replaceChildren(...(items.length ? items : [el("span", { class: "muted" }, "No flags.")]));
}

function updateDiff() {
  const detail = state.detail;
  if (!detail) return;
  const text = $("caption-text").value;
  const against = detail.transcript ? detail.transcript.text : detail.caption.text;
  const ops = wordDiff(against, text);
  renderDiff($("diff"), ops);
  const count = diffSummary(ops);
  $("diff-summary").textContent = `${count.same} kept · ${count.add} added · ${count.del} removed`;
  const edited = text.trim() !== detail.caption.text.trim();
  $("approve").replaceChildren(el("kbd", {}, "a"), edited ? " Approve with edit" : " Approve");
  $("approve").classList.toggle("edited", edited);
}

// The caption as read (not edited): each word the recogniser was unsure of is underlined, found by
// aligning the caption's words with the transcript's.
function renderCaptionView() {
  const detail = state.detail;
  if (!detail) return;
  const words = tokens($("caption-text").value);
  const heard = detail.transcript ? detail.transcript.words : [];
  const matched = alignWords(heard.map((w) => w.word.trim()), words);
  const nodes = [];
  words.forEach((word, index) => {
    const source = matched[index] >= 0 ? heard[matched[index]] : null;
    const unsure = source && typeof source.probability === "number" && source.probability < state.unsureBelow;
    nodes.push(unsure ? el("span", { class: "unsure", title: `heard with probability ${source.probability.toFixed(2)}` }, word) : word, " ");
  });
  $("caption-view").replaceChildren(...nodes);
}

function enterEdit() {
  const text = $("caption-text");
  if (!state.detail || text.readOnly) return;
  state.editing = true;
  $("caption-view").hidden = true;
  text.hidden = false;
  text.focus();
  text.setSelectionRange(text.value.length, text.value.length);
}

// Back to reading: the draft stays, and the focus returns to the page so keys are shortcuts again.
function leaveEdit() {
  const text = $("caption-text");
  const wasEditing = state.editing || document.activeElement === text;
  state.editing = false;
  text.hidden = true;
  $("caption-view").hidden = false;
  renderCaptionView();
  if (wasEditing) $("item").focus({ preventScroll: true });
}

function toggleDiff(show = !state.showDiff) {
  state.showDiff = show;
  $("diff").hidden = !show;
  $("diff-toggle").setAttribute("aria-expanded", String(show));
}

function toggleZoom(zoomed = !$("picture").classList.contains("zoomed")) {
  $("picture").classList.toggle("zoomed", zoomed);
}

function renderHistory(history) {
  $("history").replaceChildren(
    ...history.map((entry) =>
      el(
        "li",
        { class: entry.id === state.detail.caption.id ? "current" : "" },
        el("strong", {}, `#${entry.id}`),
        ` ${entry.kind} · ${entry.status} · ${entry.created_at.slice(0, 16).replace("T", " ")}`,
        entry.reviews.length
          ? el(
              "ul",
              {},
              entry.reviews.map((r) =>
                el(
                  "li",
                  {},
                  `${r.decision} by ${r.reviewer || r.source} at ${r.created_at.slice(0, 16).replace("T", " ")}`,
                  r.reason ? ` — “${r.reason}”` : "",
                ),
              ),
            )
          : null,
      ),
    ),
  );
  $("history-box").querySelector("summary").textContent = `History (${history.length} caption${history.length === 1 ? "" : "s"})`;
}

function saveDraft() {
  const detail = state.detail;
  if (!detail) return;
  const text = $("caption-text").value;
  if (text.trim() !== detail.caption.text.trim()) state.drafts.set(detail.caption.id, text);
  else state.drafts.delete(detail.caption.id);
}

// --- audio with the words lit as they are spoken ----------------------------------------------------

function stopAudio() {
  const audio = $("audio");
  audio.pause();
}

// The last word starting at or before t (binary search; words are in time order).
function wordAt(t) {
  const words = state.words;
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function lightWords() {
  const audio = $("audio");
  const index = wordAt(audio.currentTime);
  syncPointing(audio.currentTime, index); // the pointer follows the same clock
  if (index !== state.lit) {
    const [from, to] = state.lit < index ? [state.lit + 1, index] : [index + 1, state.lit];
    for (let i = Math.max(from, 0); i <= to && i < state.words.length; i++) {
      state.words[i].node.classList.toggle("spoken", i <= index);
    }
    state.words[state.lit]?.node.classList.remove("now");
    state.words[index]?.node.classList.add("now");
    state.lit = index;
  }
  if (!audio.paused) requestAnimationFrame(lightWords);
}

function setUpAudio() {
  const audio = $("audio");
  audio.addEventListener("play", () => requestAnimationFrame(lightWords));
  audio.addEventListener("seeked", lightWords);
  audio.addEventListener("timeupdate", lightWords);
  $("transcript").addEventListener("click", (event) => {
    const index = event.target.dataset?.index;
    if (index === undefined) return;
    audio.currentTime = state.words[Number(index)].start;
    audio.play().catch(() => {});
  });
}

// --- decisions -------------------------------------------------------------------------------------

async function decide(decision, extra = {}) {
  const detail = state.detail;
  if (!detail || state.busy) return;
  const caption = detail.caption;
  state.busy = true;
  try {
    const result = await api(`/api/review/captions/${caption.id}/decision`, {
      method: "POST",
      body: { decision, ...extra },
    });
    state.drafts.delete(caption.id);
    const verb = {
      approve: "Approved",
      edit: "Edited and approved",
      reject: "Rejected",
      retranscribe: "Sent back for re-transcription",
      reclean: "Sent back for re-cleaning",
    }[decision];
    toast(`${verb}: caption #${caption.id}${result.new_caption ? ` → #${result.new_caption.id}` : ""}.`);
    advanceAfter(caption.id, result.caption.status);
  } catch (error) {
    toast(`Not saved: ${errorText(error)}`, "error");
  } finally {
    state.busy = false;
  }
}

// A decided caption leaves a queue filtered by state; otherwise it stays, updated, and we move on.
function advanceAfter(id, newStatus) {
  const index = state.items.findIndex((item) => item.id === id);
  const filter = $("f-state").value;
  if (index >= 0 && filter !== "all" && filter !== newStatus) {
    state.items.splice(index, 1);
    state.total = Math.max(0, state.total - 1);
    state.detail = null;
    select(Math.min(index, state.items.length - 1));
    if (state.items.length < 10 && state.nextAfter !== null) loadMore();
  } else {
    if (index >= 0) state.items[index].status = newStatus;
    state.detail = null;
    select(Math.min(index + 1, state.items.length - 1));
  }
}

function approve() {
  const detail = state.detail;
  if (!detail) return;
  leaveEdit();
  const text = $("caption-text").value.trim();
  if (text && text !== detail.caption.text.trim()) decide("edit", { text });
  else decide("approve");
}

function showReason() {
  if (!state.detail || $("reject").disabled) return;
  leaveEdit();
  const form = $("reason-form");
  form.hidden = false;
  choosePreset(null);
  $("reason").value = "";
  $("reason").focus();
}

function hideReason() {
  $("reason-form").hidden = true;
}

function reasonOpen() {
  return !$("reason-form").hidden;
}

function renderPresets() {
  const legend = $("reason-presets").querySelector("legend");
  $("reason-presets").replaceChildren(
    legend,
    ...REJECT_PRESETS.map((label, index) => {
      const input = el("input", { type: "radio", name: "preset", value: String(index + 1) });
      input.addEventListener("change", () => choosePreset(index + 1));
      return el("label", { class: "preset" }, input, el("kbd", {}, String(index + 1)), ` ${label}`);
    }),
  );
}

// A preset makes the note optional; none chosen, the note is the reason and required.
function choosePreset(number) {
  for (const input of document.querySelectorAll("#reason-presets input")) input.checked = input.value === String(number);
  $("reason").required = number === null;
}

function rejectReason() {
  const chosen = document.querySelector("#reason-presets input:checked");
  const note = $("reason").value.trim();
  const preset = chosen ? REJECT_PRESETS[Number(chosen.value) - 1] : "";
  return preset && note ? `${preset}: ${note}` : preset || note;
}

async function batchApprove() {
  const ids = pendingShown().map((item) => item.id);
  if (!ids.length || state.busy) return;
  const what = `${ids.length} caption${ids.length === 1 ? "" : "s"}`;
  if (!window.confirm(`Approve ${what} shown with these filters? Each gets an approve decision in your name.`)) return;
  state.busy = true;
  try {
    const result = await api("/api/review/batch-approve", { method: "POST", body: { caption_ids: ids } });
    const skipped = result.skipped.length ? `; ${result.skipped.length} skipped (decided meanwhile)` : "";
    toast(`Approved ${result.approved.length} caption${result.approved.length === 1 ? "" : "s"}${skipped}.`);
    state.detail = null;
    await loadQueue();
  } catch (error) {
    toast(`Not saved: ${errorText(error)}`, "error");
  } finally {
    state.busy = false;
  }
}

function sendBack(decision) {
  if (!state.detail || $(decision).disabled) return;
  const what = decision === "retranscribe" ? "transcribe the take again" : "clean the transcript again";
  if (window.confirm(`Send caption #${state.detail.caption.id} back to ${what}? The current rows stay as history.`)) {
    decide(decision);
  }
}

function move(step) {
  if (!state.items.length) return;
  const index = Math.min(Math.max(state.index + step, 0), state.items.length - 1);
  if (index !== state.index) select(index);
  else if (step > 0 && state.nextAfter !== null) loadMore().then(() => select(index + 1));
}

// --- keys ------------------------------------------------------------------------------------------

function onKey(event) {
  const target = event.target;
  const typing = target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement || target instanceof HTMLSelectElement;
  if (target.id === "caption-text") {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      approve();
    } else if (event.key === "Escape") leaveEdit();
    return;
  }
  // With the reject form open a number key chooses a reason (in the note only while it is empty).
  const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
  const preset = Number(event.key);
  if (reasonOpen() && plain && preset >= 1 && preset <= REJECT_PRESETS.length && (target.id !== "reason" || !target.value)) {
    event.preventDefault();
    choosePreset(preset);
    return;
  }
  if (event.key === "Escape") {
    if ($("picture").classList.contains("zoomed")) toggleZoom(false);
    else if (reasonOpen()) {
      hideReason();
      $("item").focus({ preventScroll: true });
    }
    return;
  }
  if (reasonOpen() && event.key === "Enter" && target.id !== "reason" && !target.closest?.("button")) {
    event.preventDefault();
    $("reason-form").requestSubmit();
    return;
  }
  if (typing || !plain) return;
  const actions = {
    a: approve,
    r: showReason,
    e: enterEdit,
    d: () => toggleDiff(),
    z: () => toggleZoom(),
    j: () => move(1),
    k: () => move(-1),
    t: () => sendBack("retranscribe"),
    c: () => sendBack("reclean"),
    " ": () => {
      const audio = $("audio");
      if (audio.hidden) return;
      if (audio.paused) audio.play().catch(() => {});
      else audio.pause();
    },
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

// --- start -----------------------------------------------------------------------------------------

async function main() {
  const me = await requireLead();
  renderTopbar(me);
  const params = new URLSearchParams(location.search);
  await loadChoices();
  for (const name of FILTERS) {
    const select = $(`f-${name}`);
    if (params.has(name)) select.value = params.get(name);
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      for (const n of FILTERS) {
        const value = $(`f-${n}`).value;
        if (value) url.searchParams.set(n, value);
        else url.searchParams.delete(n);
      }
      url.searchParams.delete("caption");
      history.replaceState(null, "", url);
      loadQueue().catch((error) => toast(errorText(error), "error"));
    });
  }
  setUpAudio();
  setUpPointing({ wordNode: (index) => state.words[index]?.node ?? null });
  $("caption-text").addEventListener("input", updateDiff);
  $("approve").addEventListener("click", approve);
  $("reject").addEventListener("click", showReason);
  $("retranscribe").addEventListener("click", () => sendBack("retranscribe"));
  $("reclean").addEventListener("click", () => sendBack("reclean"));
  $("next").addEventListener("click", () => move(1));
  $("prev").addEventListener("click", () => move(-1));
  $("queue-more").addEventListener("click", loadMore);
  $("reason-cancel").addEventListener("click", hideReason);
  $("reason-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = rejectReason();
    if (!reason) return;
    hideReason();
    $("item").focus({ preventScroll: true });
    decide("reject", { reason });
  });
  renderPresets();
  $("caption-view").addEventListener("click", enterEdit);
  $("diff-toggle").addEventListener("click", () => toggleDiff());
  $("image").addEventListener("click", () => toggleZoom());
  $("batch-approve").addEventListener("click", batchApprove);
  document.addEventListener("keydown", onKey);
  await loadQueue();
}

main().catch((error) => {
  if (error.message !== "not a lead" && error.code !== "not_authenticated") toast(errorText(error), "error");
});
