// The review page's view of a narrate or point take: the points drawn over the image with their label
// and number, the pointer replayed along the trace as the take plays (review.js lights the words and
// calls syncPointing every frame), the alignment's phrase lit when a point is hovered, the count
// mismatches, and the lead's corrections saved as a new point-set version (older versions viewable,
// read-only). Coordinates are 0..1 of the image as displayed; times are seconds on the take's clock.
import { api, el, errorText, toast } from "./lead.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const POINTING_MODES = new Set(["narrate", "point"]);
// One colour per label (in the order the image asks for them); unlabelled points take the first.
const PALETTE = ["#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9", "#d6336c", "#0c8599", "#f08c00", "#5f3dc4"];
const MARKER_PX = 10; // a point's radius on screen, whatever the image's displayed size
const DRAG_SLOP_PX = 3; // a press that moves less than this is a click (select), not a drag
const NUDGE = 0.005; // an arrow key moves the selected point 0.5 % of the image; with Shift 5 %
const HOLD_S = 0.25; // after a stroke ends the pointer stays this long, then it left the image
const TRAIL_S = 1.5; // the bit of trace drawn behind the moving pointer

const $ = (id) => document.getElementById(id);

const state = {
  recordingId: null,
  annotator: null, // the take's annotator: the author of version 1
  data: null, // GET /api/recordings/{id}/pointing
  viewing: null, // an older version shown read-only; null = the current one
  editing: false,
  draft: [], // the points being corrected: {x, y, t, label, link}
  selected: -1,
  adding: false,
  dirty: false,
  samples: null, // the trace flattened: {x, y, t, stroke} as Float64Array / Int32Array
  lastT: null,
  lastWord: -1,
  wordNode: () => null, // review.js: the transcript's node of word i
  transcriptId: null, // the transcript on the page; the alignment's word indices are of its own
  litWords: [],
  drag: null,
  drafts: new Map(), // recording id -> unsaved corrections {base, points, note}, kept across j/k
};

// --- public: review.js calls these --------------------------------------------------------------

export function setUpPointing({ wordNode }) {
  state.wordNode = wordNode;
  const svg = $("overlay");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", onPointerUp);
  svg.addEventListener("keydown", onPointKey);
  svg.addEventListener("focusin", (event) => {
    const index = pointIndexOf(event.target);
    if (index >= 0) focusPoint(index);
  });
  svg.addEventListener("focusout", () => showLink(-1));
  svg.addEventListener("pointerover", (event) => showLink(pointIndexOf(event.target)));
  svg.addEventListener("pointerout", () => showLink(state.editing ? state.selected : -1));
  new ResizeObserver(() => state.data && drawPoints()).observe(svg);
  // SVG elements have no `hidden` property: the attribute is set (the CSS hides [hidden]).
  $("trace-toggle").addEventListener("change", () => $("trace-all").toggleAttribute("hidden", !$("trace-toggle").checked));
  $("points-edit").addEventListener("click", () => startEditing());
  $("point-cancel").addEventListener("click", () => {
    state.drafts.delete(state.recordingId);
    stopEditing();
  });
  $("point-save").addEventListener("click", save);
  $("point-delete").addEventListener("click", () => removePoint(state.selected));
  $("point-add").addEventListener("click", (event) => {
    // From the keyboard (detail 0) there is nowhere to click: the point starts in the middle and the
    // arrow keys move it.
    if (event.detail === 0) addPoint(0.5, 0.5);
    else setAdding(!state.adding);
  });
  $("point-label").addEventListener("change", relabelSelected);
  // Esc stops adding wherever the focus is, before the page's own Esc (which closes the zoom).
  document.addEventListener(
    "keydown",
    (event) => {
      if (event.key !== "Escape" || !state.adding) return;
      setAdding(false);
      event.stopPropagation();
    },
    { capture: true },
  );
  // A word of the transcript under the mouse lights the points linked to its phrase.
  $("transcript").addEventListener("mouseover", (event) => lightPoints("hot", Number(event.target.dataset?.index ?? -1)));
  $("transcript").addEventListener("mouseout", () => lightPoints("hot", -1));
  $("point-versions").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-version]");
    if (button) view(Number(button.dataset.version));
  });
}

// A caption was opened: load its take's pointing when its project points, else hide everything.
export async function showPointing(detail) {
  const recording = detail.recording;
  keepDraft();
  stopEditing({ quiet: true });
  if (!recording || !POINTING_MODES.has(detail.image.mode)) {
    hidePointing();
    return;
  }
  if (recording.id !== state.recordingId) {
    // Another take: nothing of the last one stays drawn over this image while its data loads.
    state.viewing = null;
    state.data = null;
    state.samples = null;
    $("overlay").replaceChildren();
  }
  state.recordingId = recording.id;
  state.annotator = recording.annotator;
  state.transcriptId = detail.transcript?.id ?? null;
  message("");
  await load(recording.id);
}

export function hidePointing() {
  keepDraft();
  stopEditing({ quiet: true });
  state.recordingId = null;
  state.data = null;
  state.samples = null;
  $("pointing").hidden = true;
  $("overlay").toggleAttribute("hidden", true);
  $("overlay").replaceChildren();
}

// The audio is at `t` and word `wordIndex` is lit: move the pointer along the trace, and draw the
// trace drawn while that word was spoken.
export function syncPointing(t, wordIndex) {
  if (!state.data || !state.samples) return;
  if (t !== state.lastT) {
    state.lastT = t;
    drawPointer(t);
  }
  if (wordIndex !== state.lastWord) {
    state.lastWord = wordIndex;
    drawWordTrace(wordIndex);
    lightPoints("spoken", wordIndex);
  }
}

// --- loading --------------------------------------------------------------------------------------

async function load(recordingId) {
  let data;
  try {
    data = await api(`/api/recordings/${recordingId}/pointing`);
  } catch (error) {
    if (state.recordingId !== recordingId) return;
    hidePointing();
    toast(`Could not load the points of take ${recordingId}: ${errorText(error)}`, "error");
    return;
  }
  if (state.recordingId !== recordingId) return; // the reviewer moved on meanwhile
  apply(data);
}

function apply(data) {
  state.data = data;
  state.samples = flatten(data.trace?.segments || []);
  state.lastT = null;
  state.lastWord = -1;
  if (state.viewing !== null && !versionOf(state.viewing)) state.viewing = null;
  $("pointing").hidden = false;
  $("overlay").toggleAttribute("hidden", false);
  buildOverlay();
  render();
  restoreDraft();
}

// The trace as flat arrays, so the pointer at time t is a binary search away.
function flatten(segments) {
  const n = segments.reduce((sum, stroke) => sum + stroke.length, 0);
  const flat = { x: new Float64Array(n), y: new Float64Array(n), t: new Float64Array(n), stroke: new Int32Array(n) };
  let i = 0;
  segments.forEach((stroke, s) => {
    for (const [x, y, t] of stroke) {
      flat.x[i] = x;
      flat.y[i] = y;
      flat.t[i] = t;
      flat.stroke[i] = s;
      i++;
    }
  });
  return flat;
}

function versionOf(number) {
  return state.data.point_sets.find((set) => set.version === number) || null;
}

function shownVersion() {
  return versionOf(state.viewing ?? state.data.current_version);
}

// The alignment links points of the current version by index.
function linksByPoint() {
  const links = new Map();
  (state.data.alignment?.links || []).forEach((link, index) => links.set(link.point ?? index, link));
  return links;
}

function shownPoints() {
  if (state.editing) return state.draft;
  const set = shownVersion();
  if (!set) return [];
  const links = set.version === state.data.current_version ? linksByPoint() : new Map();
  return set.points.map((point, index) => ({ ...point, link: links.get(index) || null }));
}

function labelColour(label) {
  const index = (state.data.labels || []).indexOf(label);
  return PALETTE[Math.max(index, 0) % PALETTE.length];
}

// --- drawing ------------------------------------------------------------------------------------

function svgNode(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  node.append(...children);
  return node;
}

// The overlay uses the image's pixels as its coordinates and letterboxes like the <img> (object-fit:
// contain), so it scales with the displayed image; markers are counter-scaled to stay MARKER_PX.
function buildOverlay() {
  const { width, height } = state.data.image;
  const svg = $("overlay");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const all = svgNode("g", { id: "trace-all", class: "trace-all" });
  all.toggleAttribute("hidden", !$("trace-toggle").checked);
  for (const stroke of state.data.trace?.segments || []) {
    all.append(svgNode("polyline", { points: polyline(stroke), "vector-effect": "non-scaling-stroke" }));
  }
  svg.replaceChildren(
    all,
    svgNode("g", { id: "trace-word", class: "trace-word" }),
    svgNode("polyline", { id: "trail", class: "trail", points: "", "vector-effect": "non-scaling-stroke" }),
    svgNode("g", { id: "point-tags", class: "point-tags" }), // labels under every dot, so no dot is hidden
    svgNode("g", { id: "points", class: "points" }),
    svgNode("circle", { id: "pointer", class: "pointer", r: 1, visibility: "hidden" }),
  );
  $("trace-toggle").disabled = !state.data.trace?.sample_count;
}

function polyline(samples) {
  const { width, height } = state.data.image;
  return samples.map(([x, y]) => `${(x * width).toFixed(1)},${(y * height).toFixed(1)}`).join(" ");
}

// Screen pixels per image pixel.
function scale() {
  const box = $("overlay").getBoundingClientRect();
  const { width, height } = state.data.image;
  return Math.min(box.width / width, box.height / height) || 1;
}

function drawPoints() {
  const layer = $("points");
  if (!layer) return;
  const { width, height } = state.data.image;
  const k = 1 / scale();
  const hadFocus = $("overlay").contains(document.activeElement);
  const counts = new Map();
  const dots = [];
  const tags = [];
  shownPoints().forEach((point, index) => {
    const number = (counts.get(point.label) || 0) + 1;
    counts.set(point.label, number);
    const name = point.label ? `${point.label} ${number}` : `point ${number}`;
    const at = `translate(${(point.x * width).toFixed(2)} ${(point.y * height).toFixed(2)})`;
    dots.push(
      svgNode(
        "g",
        {
          class: ["pt", index === state.selected && "selected", point.link?.phrase && "linked"].filter(Boolean).join(" "),
          "data-index": index,
          "data-label": point.label ?? "",
          transform: at,
          tabindex: 0,
          role: "button",
          "aria-label": `${name} at ${(point.x * 100).toFixed(1)} %, ${(point.y * 100).toFixed(1)} %`,
        },
        svgNode(
          "g",
          { transform: `scale(${k})` },
          svgNode("circle", { class: "pt-dot", r: MARKER_PX, fill: labelColour(point.label) }),
          svgNode("text", { class: "pt-number", "text-anchor": "middle", dy: "0.35em" }, String(number)),
        ),
      ),
    );
    tags.push(
      svgNode(
        "g",
        { class: "pt-tag", "data-index": index, transform: at },
        svgNode(
          "text",
          {
            class: "pt-label",
            // Near the right edge the label goes on the left of its dot, so it is not cut off.
            x: (point.x > 0.8 ? -1 : 1) * (MARKER_PX + 4) * k,
            "text-anchor": point.x > 0.8 ? "end" : "start",
            dy: "0.35em",
            "font-size": 12 * k,
          },
          point.label ?? "",
        ),
      ),
    );
  });
  layer.replaceChildren(...dots);
  $("point-tags").replaceChildren(...tags);
  lightPoints("spoken", state.lastWord); // redrawn dots keep the phrase being spoken lit
  $("pointer").setAttribute("r", (MARKER_PX * 0.7 * k).toFixed(2));
  if (hadFocus && state.selected >= 0) layer.querySelector(`[data-index="${state.selected}"]`)?.focus();
}

// Moves one marker without redrawing the rest (while dragging).
function placePoint(index) {
  const point = state.draft[index];
  const { width, height } = state.data.image;
  const at = `translate(${(point.x * width).toFixed(2)} ${(point.y * height).toFixed(2)})`;
  for (const node of $("overlay").querySelectorAll(`[data-index="${index}"]`)) node.setAttribute("transform", at);
}

// The last sample at or before t, or -1.
function sampleAt(t) {
  const times = state.samples.t;
  let lo = 0;
  let hi = times.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

// The pointer where the annotator's was at time t (between two samples of a stroke: on the line
// between them); hidden before the first sample and once a stroke has ended (the pointer left the image).
function drawPointer(t) {
  const { x, y, t: times, stroke } = state.samples;
  const pointer = $("pointer");
  const trail = $("trail");
  const i = sampleAt(t);
  const sameStroke = i >= 0 && i + 1 < times.length && stroke[i + 1] === stroke[i];
  if (i < 0 || (!sameStroke && t - times[i] > HOLD_S)) {
    pointer.setAttribute("visibility", "hidden");
    trail.setAttribute("points", "");
    return;
  }
  let px = x[i];
  let py = y[i];
  if (sameStroke) {
    const f = (t - times[i]) / (times[i + 1] - times[i]);
    px += (x[i + 1] - px) * f;
    py += (y[i + 1] - py) * f;
  }
  const { width, height } = state.data.image;
  pointer.setAttribute("cx", (px * width).toFixed(2));
  pointer.setAttribute("cy", (py * height).toFixed(2));
  pointer.setAttribute("visibility", "visible");
  pointer.dataset.x = px.toFixed(4);
  pointer.dataset.y = py.toFixed(4);
  const tail = [];
  for (let j = i; j >= 0 && stroke[j] === stroke[i] && t - times[j] <= TRAIL_S; j--) tail.push([x[j], y[j]]);
  tail.reverse().push([px, py]);
  trail.setAttribute("points", polyline(tail));
}

// The trace drawn while word `index` was spoken (the alignment's [first, last] flat sample indices),
// split where the pointer left the image.
function drawWordTrace(index) {
  const layer = $("trace-word");
  const range = alignedHere() ? state.data.alignment.words?.[index] : null;
  if (!layer) return;
  if (!Array.isArray(range) || range[0] === null || range[0] === undefined) {
    layer.replaceChildren();
    return;
  }
  const { x, y, stroke } = state.samples;
  const lines = [];
  let run = [];
  for (let i = range[0]; i <= range[1] && i < x.length; i++) {
    if (run.length && stroke[i] !== stroke[i - 1]) {
      lines.push(run);
      run = [];
    }
    run.push([x[i], y[i]]);
  }
  if (run.length) lines.push(run);
  layer.replaceChildren(
    ...lines.map((line) => svgNode("polyline", { points: polyline(line), "vector-effect": "non-scaling-stroke" })),
  );
}

// --- the panel -----------------------------------------------------------------------------------

function render() {
  drawPoints();
  renderCounts();
  renderFlags();
  renderVersions();
  renderEditor();
  const older = state.viewing !== null && state.viewing !== state.data.current_version;
  $("pointing-viewing").hidden = !older;
  if (older) {
    const back = el("button", { type: "button", class: "link", onclick: () => view(null) }, "Back to the current version");
    $("pointing-viewing").replaceChildren(`Viewing version ${state.viewing} (read-only). `, back);
  }
  $("points-edit").disabled = older || state.editing || state.data.current_version === null;
  $("overlay").classList.toggle("editing", state.editing);
}

// Per label: how many points (or "none in this image").
function renderCounts() {
  const points = shownPoints();
  const set = shownVersion();
  const absent = new Set(state.editing ? absentLabels() : set?.absent_labels || []);
  const labels = [...(state.data.labels || [])];
  for (const point of points) if (point.label && !labels.includes(point.label)) labels.push(point.label);
  const rows = labels.map((label) => {
    const n = points.filter((p) => p.label === label).length;
    const what = n ? `${n} point${n === 1 ? "" : "s"}` : absent.has(label) ? "none in this image" : "not answered";
    return el("li", { dataset: { label } }, swatch(label), el("b", {}, label), ` ${what}`);
  });
  const unlabelled = points.filter((p) => !p.label).length;
  if (unlabelled || !labels.length) {
    rows.push(el("li", {}, swatch(null), `${unlabelled} point${unlabelled === 1 ? "" : "s"}`));
  }
  $("point-counts").replaceChildren(...rows);
}

function swatch(label) {
  const node = el("span", { class: "swatch", "aria-hidden": "true" });
  node.style.background = labelColour(label); // CSSOM, which the CSP allows (a style attribute it does not)
  return node;
}

// The alignment's count check: a spoken number that disagrees with the points linked to its phrase.
function renderFlags() {
  const alignment = state.data.alignment;
  const items = [];
  if (alignment?.count_mismatch) {
    items.push(el("span", { class: "badge flag count-mismatch" }, "count mismatch"));
    for (const count of alignment.counts || []) {
      if (count.agrees) continue;
      const phrase = count.phrase || count.label || "";
      items.push(
        el("span", { class: "mismatch" }, `said ${count.spoken} for “${phrase}” but pointed at ${count.pointed}`),
      );
    }
  }
  if (!state.data.words?.length) items.push(el("span", { class: "muted" }, "Not transcribed yet: no words to link."));
  $("point-flags").replaceChildren(...items);
}

function renderVersions() {
  const current = state.data.current_version;
  const shown = state.viewing ?? current;
  $("point-versions").replaceChildren(
    ...[...state.data.point_sets].reverse().map((set) => {
      const who = set.created_by || (set.version === 1 ? `${state.annotator || "the annotator"} (annotator)` : "unknown");
      const when = (set.created_at || "").slice(0, 16).replace("T", " ");
      const n = set.points.length;
      return el(
        "li",
        { class: set.version === shown ? "shown" : "" },
        el(
          "button",
          { type: "button", class: "link", dataset: { version: set.version }, "aria-current": set.version === shown ? "true" : null },
          `v${set.version}`,
        ),
        ` ${who} · ${when} · ${n} point${n === 1 ? "" : "s"}`,
        set.version === current ? el("span", { class: "badge approved" }, "current") : null,
        set.note ? el("span", { class: "note" }, ` — “${set.note}”`) : null,
      );
    }),
  );
}

function renderEditor() {
  $("point-editor").hidden = !state.editing;
  if (!state.editing) return;
  // The chooser shows the selected point's label (changing it relabels that point).
  const label = state.draft[state.selected]?.label ?? null;
  if (label !== null && [...$("point-label").options].some((o) => o.value === label)) $("point-label").value = label;
  $("point-delete").disabled = state.selected < 0;
  $("point-add").setAttribute("aria-pressed", String(state.adding));
  $("point-add").classList.toggle("on", state.adding);
  $("overlay").classList.toggle("adding", state.adding);
  $("point-save").disabled = !state.dirty;
}

function message(text) {
  $("pointing-message").textContent = text;
  $("pointing-message").hidden = !text;
}

function view(version) {
  if (state.editing) return;
  state.viewing = version === state.data.current_version ? null : version;
  state.selected = -1;
  render();
}

// The words of the phrase a point is linked to are lit while it is hovered or focused.
function showLink(index) {
  for (const node of state.litWords) node.classList.remove("linked");
  state.litWords = [];
  const points = state.data ? shownPoints() : [];
  const point = points[index];
  const link = point?.link;
  if (!point) {
    $("point-status").textContent = "";
    return;
  }
  const name = point.label || "point";
  if (!link || !link.phrase) {
    $("point-status").textContent = `${name}: linked to no phrase`;
    return;
  }
  for (let i = link.word_start; alignedHere() && i <= link.word_end; i++) {
    const node = state.wordNode(i);
    if (node) {
      node.classList.add("linked");
      state.litWords.push(node);
    }
  }
  const apart = typeof link.distance_s === "number" ? ` (${link.distance_s.toFixed(1)} s away)` : "";
  $("point-status").textContent = `${name} ↔ “${link.phrase}”${apart}`;
}

// The alignment's word indices are of its transcript: they light words only when that is the one shown
// (a caption of an older revision shows its own transcript).
function alignedHere() {
  const alignment = state.data?.alignment;
  return !!alignment && (alignment.transcript_id === undefined || alignment.transcript_id === state.transcriptId);
}

// The points linked to a phrase that covers word `index` get `className` (the word being spoken, or
// the word under the mouse); -1 clears it.
function lightPoints(className, index) {
  if (!state.data || state.editing || !alignedHere()) return;
  const points = shownPoints();
  for (const node of $("points")?.children || []) {
    const link = points[Number(node.dataset.index)]?.link;
    node.classList.toggle(className, !!link?.phrase && index >= link.word_start && index <= link.word_end);
  }
}

// --- correcting ----------------------------------------------------------------------------------

// Moving to another caption keeps unsaved corrections, as the caption's draft text is kept.
function keepDraft() {
  if (!state.editing || !state.dirty || state.recordingId === null) return;
  const points = state.draft.map((point) => ({ ...point }));
  state.drafts.set(state.recordingId, { base: state.data.current_version, points, note: $("point-note").value });
}

function restoreDraft() {
  const kept = state.drafts.get(state.recordingId);
  if (!kept) return;
  state.drafts.delete(state.recordingId);
  if (kept.base !== state.data.current_version) {
    message(`Your unsaved corrections of version ${kept.base} were dropped: version ${state.data.current_version} was saved since.`);
    return;
  }
  startEditing({ focus: false }); // the reviewer may be paging with j/k: keys stay shortcuts
  state.draft = kept.points;
  state.dirty = true;
  $("point-note").value = kept.note;
  render();
  $("point-status").textContent = "Your unsaved corrections are back: save or cancel them.";
}

function startEditing({ focus = true } = {}) {
  if (!state.data || state.editing || state.viewing !== null) return;
  state.draft = shownPoints().map((point) => ({ ...point }));
  state.editing = true;
  state.selected = -1;
  state.dirty = false;
  $("point-note").value = "";
  message("");
  fillLabels();
  render();
  if (focus) $("point-label").focus();
}

function stopEditing({ quiet = false } = {}) {
  if (!state.editing) return;
  state.editing = false;
  state.adding = false;
  state.draft = [];
  state.selected = -1;
  state.dirty = false;
  if (!quiet && state.data) render();
  $("overlay").classList.remove("editing", "adding");
  $("point-editor").hidden = true;
}

function fillLabels() {
  const labels = [...(state.data.labels || [])];
  for (const point of state.draft) if (point.label && !labels.includes(point.label)) labels.push(point.label);
  const options = labels.map((label) => el("option", { value: label }, label));
  if (state.data.mode === "narrate" || !labels.length) options.unshift(el("option", { value: "" }, "(no label)"));
  $("point-label").replaceChildren(...options);
}

function chosenLabel() {
  return $("point-label").value || null;
}

function changed() {
  state.dirty = true;
  render();
}

function setAdding(on) {
  state.adding = on;
  renderEditor();
  $("point-status").textContent = on ? `Click the image to add a ${chosenLabel() || "point"}; Esc stops.` : "";
}

function addPoint(x, y) {
  state.draft.push({ x: round(x), y: round(y), t: null, label: chosenLabel(), link: null });
  state.selected = state.draft.length - 1;
  changed();
  $("points").querySelector(`[data-index="${state.selected}"]`)?.focus();
}

function removePoint(index) {
  if (!state.editing || index < 0 || index >= state.draft.length) return;
  state.draft.splice(index, 1);
  state.selected = Math.min(index, state.draft.length - 1);
  changed();
  if (state.selected >= 0) $("points").querySelector(`[data-index="${state.selected}"]`)?.focus();
  else $("point-add").focus();
}

function relabelSelected() {
  const point = state.draft[state.selected];
  if (!state.editing || !point || point.label === chosenLabel()) return;
  point.label = chosenLabel();
  point.link = null; // its phrase was found for the old label
  changed();
}

function focusPoint(index) {
  if (state.editing && index !== state.selected) {
    state.selected = index;
    for (const node of $("points").children) node.classList.toggle("selected", Number(node.dataset.index) === index);
    renderEditor();
  }
  showLink(index);
}

// In point mode a label left with no point is answered "none in this image".
function absentLabels() {
  if (state.data.mode !== "point") return shownVersion()?.absent_labels || [];
  return (state.data.labels || []).filter((label) => !state.draft.some((point) => point.label === label));
}

async function save() {
  if (!state.editing || !state.dirty) return;
  const recordingId = state.recordingId;
  const base = state.data.current_version;
  const body = {
    base_version: base,
    points: state.draft.map(({ x, y, t, label }) => ({ x, y, t, label })),
    absent_labels: absentLabels(),
    note: $("point-note").value.trim(),
  };
  $("point-save").disabled = true;
  try {
    const saved = await api(`/api/recordings/${recordingId}/points`, { method: "POST", body });
    stopEditing({ quiet: true });
    state.viewing = null;
    if (state.recordingId === recordingId) apply(saved); // the answer is the take's pointing, as GET gives it
    toast(`Saved the points as version ${saved.current_version}.`);
  } catch (error) {
    if (error.code === "point_set_stale") {
      // Someone saved a newer version since this page loaded: show theirs rather than overwrite it.
      stopEditing({ quiet: true });
      await load(recordingId);
      message(
        `Not saved: someone else saved a newer version of these points (now version ` +
          `${state.data?.current_version ?? "?"}) while you were correcting version ${base}. ` +
          "The newest version is shown; make your correction again on it.",
      );
    } else {
      message(`Not saved: ${errorText(error)}`);
      renderEditor();
    }
  }
}

// --- mouse, pen, touch and keys --------------------------------------------------------------------

function pointIndexOf(target) {
  const node = target?.closest?.(".pt");
  return node ? Number(node.dataset.index) : -1;
}

// A pointer event's position in 0..1 of the image (the overlay's matrix undoes the letterbox and scale).
function imagePosition(event) {
  const svg = $("overlay");
  const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
  const { width, height } = state.data.image;
  return { x: clamp(at.x / width), y: clamp(at.y / height) };
}

function clamp(value) {
  return Math.min(Math.max(value, 0), 1);
}

// Four decimals: a tenth of a pixel on a 1,000-pixel image, and the saved JSON stays short.
function round(value) {
  return Math.round(value * 10000) / 10000;
}

function onPointerDown(event) {
  if (!state.editing || event.button > 0) return;
  const index = pointIndexOf(event.target);
  if (index < 0) {
    if (state.adding) {
      event.preventDefault(); // the new point keeps the focus (no mousedown moves it to the page)
      const at = imagePosition(event);
      addPoint(at.x, at.y);
    } else focusPoint(-1);
    return;
  }
  event.preventDefault();
  $("points").querySelector(`[data-index="${index}"]`)?.focus({ preventScroll: true });
  focusPoint(index);
  $("overlay").setPointerCapture(event.pointerId);
  state.drag = { index, pointerId: event.pointerId, x: event.clientX, y: event.clientY, moved: false };
}

function onPointerMove(event) {
  const drag = state.drag;
  if (!drag || event.pointerId !== drag.pointerId) return;
  if (!drag.moved && Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < DRAG_SLOP_PX) return;
  drag.moved = true;
  const at = imagePosition(event);
  const point = state.draft[drag.index];
  point.x = round(at.x);
  point.y = round(at.y);
  placePoint(drag.index);
}

function onPointerUp(event) {
  const drag = state.drag;
  if (!drag || event.pointerId !== drag.pointerId) return;
  state.drag = null;
  if (drag.moved) changed();
}

function onPointKey(event) {
  const index = pointIndexOf(event.target);
  if (!state.editing || index < 0) return;
  const step = event.shiftKey ? NUDGE * 10 : NUDGE;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (event.key === "Delete" || event.key === "Backspace") removePoint(index);
  else if (moves[event.key]) {
    const point = state.draft[index];
    point.x = round(clamp(point.x + moves[event.key][0]));
    point.y = round(clamp(point.y + moves[event.key][1]));
    changed();
  } else if (event.key === "Escape") {
    setAdding(false);
    focusPoint(-1);
    $("point-add").focus();
  } else return;
  // These keys belong to the point, not to the page's shortcuts.
  event.preventDefault();
  event.stopPropagation();
}
