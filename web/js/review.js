// The review page: a filtered queue of captions; for each the image, the take with its words lit as they
// are spoken, the transcript, the caption with its diff, and the decision keys.
import { diffSummary, renderDiff, wordDiff } from "./diff.js";
import { api, el, errorText, fillSelect, fmt, renderTopbar, requireLead, toast } from "./lead.js";

const $ = (id) => document.getElementById(id);
const FILTERS = ["project", "annotator", "flag", "qc", "state"];
const PAGE = 100;

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

async function loadQueue({ keep = null } = {}) {
  const params = filterParams();
  params.set("limit", PAGE);
  const page = await api(`/api/review/queue?${params}`);
  state.items = page.items;
  state.total = page.total;
  state.nextAfter = page.next_after;
  renderQueue();
  const wanted = keep ?? Number(new URLSearchParams(location.search).get("caption")) ?? null;
  const found = state.items.findIndex((item) => item.id === wanted);
  await select(found >= 0 ? found : 0);
}

async function loadMore() {
  if (state.nextAfter === null) return;
  const params = filterParams();
  params.set("limit", PAGE);
  params.set("after", state.nextAfter);
  const page = await api(`/api/review/queue?${params}`);
  state.items.push(...page.items);
  state.nextAfter = page.next_after;
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
        item.flags.length ? el("div", { class: "queue-flags" }, item.flags.map(flagBadge)) : null,
        el("div", { class: "preview" }, item.preview),
      ),
    ),
  );
  const shown = state.items.length;
  $("queue-count").textContent =
    state.total === 0 ? "No captions match." : `${state.total} caption${state.total === 1 ? "" : "s"}` +
      (shown < state.total ? ` (${shown} loaded)` : "");
  $("queue-more").hidden = state.nextAfter === null;
}

function flagBadge(flag) {
  const name = typeof flag === "string" ? flag : flag.code || flag.name || JSON.stringify(flag);
  const mismatch = /^language_mismatch:([\w-]+)!=([\w-]+)$/.exec(name); // transcribe/language_policy.py
  if (mismatch) return el("span", { class: "badge flag" }, `spoke ${mismatch[1]} in a project set to ${mismatch[2]}`);
  return el("span", { class: "badge flag" }, name.replaceAll("_", " "));
}

// --- one caption -------------------------------------------------------------------------------------

async function select(index) {
  saveDraft();
  if (index < 0 || index >= state.items.length) {
    state.index = -1;
    state.detail = null;
    $("item-body").hidden = true;
    $("empty").hidden = false;
    stopAudio();
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
    const detail = await api(`/api/review/captions/${id}`);
    if (state.items[state.index]?.id !== id) return; // the reviewer moved on meanwhile
    state.detail = detail;
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
  renderHistory(detail.history);
  hideReason();
  const final = caption.status === "superseded";
  for (const id of ["approve", "reject", "retranscribe", "reclean"]) $(id).disabled = final;
  const noTake = !recording;
  $("retranscribe").disabled ||= noTake;
  $("reclean").disabled ||= noTake;
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
    if (word.probability !== null && word.probability !== undefined && word.probability < 0.5) {
      node.classList.add("unsure");
    }
    state.words.push({ start: word.start, end: word.end, node });
    nodes.push(node, " ");
  });
  box.replaceChildren(...nodes);
}

function renderFlags(caption, transcript) {
  const items = [];
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
  const text = $("caption-text").value.trim();
  if (text && text !== detail.caption.text.trim()) decide("edit", { text });
  else decide("approve");
}

function showReason() {
  if (!state.detail || $("reject").disabled) return;
  const form = $("reason-form");
  form.hidden = false;
  $("reason").value = "";
  $("reason").focus();
}

function hideReason() {
  $("reason-form").hidden = true;
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
    } else if (event.key === "Escape") target.blur();
    return;
  }
  if (target.id === "reason" && event.key === "Escape") {
    hideReason();
    target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    a: approve,
    r: showReason,
    e: () => $("caption-text").focus(),
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
    const reason = $("reason").value.trim();
    if (!reason) return;
    hideReason();
    decide("reject", { reason });
  });
  document.addEventListener("keydown", onKey);
  await loadQueue();
}

main().catch((error) => {
  if (error.message !== "not a lead" && error.code !== "not_authenticated") toast(errorText(error), "error");
});
