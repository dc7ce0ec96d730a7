// Pointing on the task page for narrate and point projects (docs/architecture.md, "Pointing: narrate
// and point modes"). narrate: while recording, the pointer's path over the image is traced and a click
// or tap drops a point. point: the image's labels are listed; the annotator picks one and taps every
// instance (numbered markers that can be dragged, removed and undone) or answers "None in this image".
//
// Positions are kept in 0..1 of the image as displayed: the <img>'s bounding rect already holds the
// viewer's zoom and pan, and its natural size is the EXIF-oriented one (what images.width/height
// measure). Times are seconds on the take's audio clock, from Recorder.audioSeconds(). describe
// projects never get here: every method is a no-op for them.

import { t } from "./i18n.js";

const CLICK_SLOP_PX = 5; // a press that moves less than this is a click or a tap, not a drag
const MIN_GAP_S = 0.015; // keep at most ~60 samples a second (mice report up to 1000)
// A resting pointer is sampled again at ~30 Hz (every 2nd frame), so a word spoken while it rests has samples.
const REST_GAP_S = 0.03;
// The server's caps (VOICECAP_POINTING_MAX_*), when the task does not say.
const DEFAULT_MAX_SAMPLES = 20000;
const DEFAULT_MAX_POINTS = 500;
const MARKER_RADIUS = 11; // px on screen, whatever the zoom
const HIT_RADIUS = 18; // a press this close to a marker grabs it (a finger is not a mouse)
const COLOURS = ["#e4572e", "#2e86de", "#17a673", "#b05cc6", "#f0a202", "#0fa3b1", "#d7263d", "#6a7f3a"];
const NARRATE_COLOUR = "#e4572e";

const round4 = (value) => Math.round(value * 1e4) / 1e4;
const round3 = (value) => Math.round(value * 1e3) / 1e3;
const clamp01 = (value) => Math.min(1, Math.max(0, value));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export class Pointing {
  /**
   * viewport and img: the viewer's elements; viewer: {zoomAt, panBy, options} from task.js;
   * panel: the side card to fill; clock(timeStamp): seconds into the take, or null when not recording;
   * onChange(): points or answers changed (Submit may have become possible).
   */
  constructor({ viewport, img, viewer, panel, clock, onChange = () => {} }) {
    this.onChange = onChange;
    this.viewport = viewport;
    this.img = img;
    this.viewer = viewer;
    this.panel = panel;
    this.clock = clock;
    this.mode = "describe";
    this.labels = [];
    this.maxSamples = DEFAULT_MAX_SAMPLES;
    this.maxPoints = DEFAULT_MAX_POINTS;
    this.state = "loading"; // the task page's state, from render()
    this.presses = new Map(); // pointerId -> the press being followed
    this.pinch = null;
    this.hover = null; // where the pointer is over the viewport (mouse, pen; a finger while down)
    this.canvas = element("canvas", { class: "pointing-overlay", "aria-hidden": "true" });
    this._clear();
    this._listen();
    this._loop();
  }

  get active() {
    return this.mode === "narrate" || this.mode === "point";
  }

  // ---------- the page's hooks ----------

  /** A new task: its mode and labels; everything of the last task is dropped. */
  configure(task) {
    this.mode = task.mode || "describe";
    this.labels = this.mode === "point" ? [...(task.labels || [])] : [];
    const limits = task.limits || {};
    this.maxSamples = limits.pointing_max_trace_samples || DEFAULT_MAX_SAMPLES;
    this.maxPoints = limits.pointing_max_points || DEFAULT_MAX_POINTS;
    this._clear();
    this.selectedLabel = this.labels.length === 1 ? this.labels[0] : null;
    document.body.dataset.pointingMode = this.mode;
    this.viewport.classList.toggle("is-pointing", this.active);
    this.viewport.dataset.pointingMode = this.mode;
    this.viewer.options.dblclickZoom = !this.active; // two quick taps are two points, not a zoom
    this.viewer.options.pan = (event) => this._viewerMayPan(event);
    if (this.active && !this.canvas.isConnected) this.viewport.append(this.canvas);
    if (!this.active) this.canvas.remove();
    this._hint();
    this._buildPanel();
    this._changed();
  }

  /** The take is discarded (re-record, skip): its trace and points go with it. */
  reset() {
    this._clear();
    this._changed();
  }

  /** Recording stopped after `seconds` of audio: close the stroke, drop anything timed past the end. */
  endTake(seconds) {
    if (!this.active) return;
    this.stroke = null;
    this.strokes = this.strokes.map((stroke) => stroke.filter((sample) => sample[2] <= seconds)).filter((s) => s.length);
    for (const point of this.points) if (point.t !== null) point.t = Math.min(point.t, round3(seconds));
    this._changed();
  }

  /** Is the pointing part complete? point mode: every label has points or "none in this image". */
  ready() {
    if (this.mode !== "point") return true;
    return this.labels.every((label) => this.absent.has(label) || this._count(label) > 0);
  }

  /** The `pointing` part for a take of `seconds` (a JSON string), or null for describe projects.
   * Points placed after recording are timed at the take's end. */
  payload(seconds) {
    if (!this.active) return null;
    const end = round3(seconds);
    return JSON.stringify({
      version: 1,
      traces: this.strokes.filter((stroke) => stroke.length),
      points: this.points.map(({ x, y, t: time, label }) => ({ x, y, t: time === null ? end : time, label })),
      absent_labels: this.labels.filter((label) => this.absent.has(label) && this._count(label) === 0),
    });
  }

  /** Show the pointing of a take restored from the outbox (after a reload). */
  restore(json) {
    if (!this.active || !json) return;
    try {
      const data = JSON.parse(json);
      this._clear();
      this.strokes = data.traces || [];
      this.points = (data.points || []).map((point) => ({ ...point }));
      this.absent = new Set(data.absent_labels || []);
    } catch {
      return; // the server judges what is sent; this is only the picture
    }
    this._changed();
  }

  /** The page's state changed (task.js render()). */
  render(state) {
    this.state = state;
    if (this.active) this._renderPanel();
  }

  // ---------- state ----------

  _clear() {
    this.strokes = []; // [[x, y, t], ...] per stroke, in time order
    this.stroke = null; // the stroke being drawn (also the last of strokes)
    this.lastT = -Infinity; // t strictly increases over the whole trace
    this.lastSampleAt = -Infinity;
    this.sampleCount = 0;
    this.points = []; // {x, y, t (null: placed after recording), label}
    this.absent = new Set();
    this.history = []; // undo: {kind: add | move | remove | absent, ...}
    this.selectedPoint = null;
    this.message = "";
  }

  _recording() {
    return this.clock(performance.now()) !== null;
  }

  // Points may be placed while recording or after (point mode); narrate points only while speaking.
  _editable() {
    if (this.mode === "narrate") return this.state === "recording";
    return this.state === "recording" || this.state === "take";
  }

  _count(label) {
    return this.points.filter((point) => point.label === label).length;
  }

  // ---------- geometry ----------

  /** Client coordinates → {x, y} in 0..1 of the image, or null when not over the visible image. */
  _toImage(clientX, clientY) {
    const box = this.img.getBoundingClientRect();
    const view = this.viewport.getBoundingClientRect();
    if (!box.width || !box.height || !this.img.naturalWidth) return null;
    if (clientX < view.left || clientX > view.right || clientY < view.top || clientY > view.bottom) return null;
    const x = (clientX - box.left) / box.width;
    const y = (clientY - box.top) / box.height;
    if (x < 0 || x > 1 || y < 0 || y > 1) return null;
    return { x, y };
  }

  /** {x, y} in 0..1 of the image → px in the viewport (the overlay's coordinates). */
  _toScreen(x, y) {
    const box = this.img.getBoundingClientRect();
    const view = this.viewport.getBoundingClientRect();
    return { x: box.left - view.left + x * box.width, y: box.top - view.top + y * box.height };
  }

  _markerAt(clientX, clientY) {
    const view = this.viewport.getBoundingClientRect();
    let best = null;
    let bestDistance = HIT_RADIUS;
    for (const point of this.points) {
      const at = this._toScreen(point.x, point.y);
      const distance = Math.hypot(at.x + view.left - clientX, at.y + view.top - clientY);
      if (distance <= bestDistance) {
        best = point;
        bestDistance = distance;
      }
    }
    return best;
  }

  // ---------- tracing (narrate) ----------

  /** One pointer position at `timeStamp` (performance.now() timeline). */
  _sample(clientX, clientY, timeStamp) {
    const seconds = this.clock(timeStamp);
    const at = seconds === null ? null : this._toImage(clientX, clientY);
    if (at === null || seconds < 0) {
      this.stroke = null; // off the image, or not recording: the stroke ends here
      return;
    }
    const time = round3(seconds);
    if (time <= this.lastT || (this.stroke && time - this.lastT < MIN_GAP_S)) return;
    if (this.sampleCount >= this.maxSamples) return;
    if (!this.stroke) {
      this.stroke = [];
      this.strokes.push(this.stroke);
    }
    this.stroke.push([round4(at.x), round4(at.y), time]);
    this.lastT = time;
    this.lastSampleAt = timeStamp;
    this.sampleCount += 1;
    this._dirty = true;
  }

  _traceEvent(event) {
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const one of events.length ? events : [event]) this._sample(one.clientX, one.clientY, one.timeStamp);
  }

  // ---------- pointer events ----------

  // The viewer pans on a mouse drag (both modes); fingers are ours: one traces (narrate) or pans
  // (point), two pinch; a press on a marker moves the marker.
  _viewerMayPan(event) {
    if (!this.active) return true;
    if (event.pointerType === "touch") return false;
    if (this.mode === "narrate" && event.pointerType === "pen") return false;
    return !(this.mode === "point" && this._markerAt(event.clientX, event.clientY));
  }

  _listen() {
    const viewport = this.viewport;
    viewport.addEventListener("pointerdown", (event) => this._down(event));
    viewport.addEventListener("pointermove", (event) => this._move(event));
    viewport.addEventListener("pointerup", (event) => this._up(event, false));
    viewport.addEventListener("pointercancel", (event) => this._up(event, true));
    viewport.addEventListener("pointerleave", (event) => {
      if (event.pointerType === "mouse" || event.pointerType === "pen") this._leave();
    });
    viewport.addEventListener("viewchange", () => {
      this._dirty = true;
      // The image moved under a resting pointer: that is a new position on the image.
      if (this.hover && this.mode === "narrate") this._sample(this.hover.clientX, this.hover.clientY, performance.now());
    });
    window.addEventListener("resize", () => (this._dirty = true));
    document.addEventListener("keydown", (event) => this._key(event));
  }

  _leave() {
    this.hover = null;
    this.stroke = null;
  }

  _down(event) {
    if (!this.active) return;
    const press = {
      id: event.pointerId,
      type: event.pointerType,
      startX: event.clientX,
      startY: event.clientY,
      lastX: event.clientX,
      lastY: event.clientY,
      moved: false,
      marker: null,
      from: null,
    };
    if (this.mode === "point" && this._editable()) {
      press.marker = this._markerAt(event.clientX, event.clientY);
      if (press.marker) {
        press.from = { x: press.marker.x, y: press.marker.y };
        this.viewport.setPointerCapture(event.pointerId);
      }
    }
    this.presses.set(event.pointerId, press);
    const touches = [...this.presses.values()].filter((p) => p.type === "touch");
    if (touches.length === 2) {
      for (const p of touches) p.moved = true; // a pinch is no tap
      this.pinch = { distance: this._distance(touches) };
      this._leave();
      return;
    }
    this.hover = { clientX: event.clientX, clientY: event.clientY };
    if (this.mode === "narrate") this._sample(event.clientX, event.clientY, event.timeStamp);
  }

  _move(event) {
    if (!this.active) return;
    const press = this.presses.get(event.pointerId);
    if (press && Math.hypot(event.clientX - press.startX, event.clientY - press.startY) > CLICK_SLOP_PX) press.moved = true;
    if (this.pinch && press && press.type === "touch") {
      this._pinchMove(press, event);
      return;
    }
    if (press && press.marker && press.moved) {
      this._dragMarker(press.marker, event.clientX, event.clientY);
    } else if (press && press.type === "touch" && this.mode === "point") {
      this.viewer.panBy(event.clientX - press.lastX, event.clientY - press.lastY);
    }
    if (press) {
      press.lastX = event.clientX;
      press.lastY = event.clientY;
    }
    // A finger only traces while it touches; a mouse or pen also while it hovers.
    if (event.pointerType === "touch" && !press) return;
    this.hover = { clientX: event.clientX, clientY: event.clientY };
    if (this.mode === "narrate") this._traceEvent(event);
  }

  _up(event, cancelled) {
    if (!this.active) return;
    const press = this.presses.get(event.pointerId);
    this.presses.delete(event.pointerId);
    if (this.pinch && [...this.presses.values()].filter((p) => p.type === "touch").length < 2) this.pinch = null;
    if (event.pointerType !== "mouse") this._leave(); // lifting a finger or pen ends its stroke
    if (!press || cancelled) return;
    if (press.marker && press.moved) {
      const { x, y } = press.marker;
      if (x !== press.from.x || y !== press.from.y) this._do({ kind: "move", point: press.marker, from: press.from, to: { x, y } });
      return;
    }
    if (!press.moved) this._tap(press.startX, press.startY, event.timeStamp, press.marker);
  }

  _distance([a, b]) {
    return Math.hypot(a.lastX - b.lastX, a.lastY - b.lastY) || 1;
  }

  _pinchMove(press, event) {
    const touches = [...this.presses.values()].filter((p) => p.type === "touch");
    const before = this._distance(touches);
    const midBefore = { x: (touches[0].lastX + touches[1].lastX) / 2, y: (touches[0].lastY + touches[1].lastY) / 2 };
    press.lastX = event.clientX;
    press.lastY = event.clientY;
    const after = this._distance(touches);
    const midAfter = { x: (touches[0].lastX + touches[1].lastX) / 2, y: (touches[0].lastY + touches[1].lastY) / 2 };
    const view = this.viewport.getBoundingClientRect();
    this.viewer.panBy(midAfter.x - midBefore.x, midAfter.y - midBefore.y);
    this.viewer.zoomAt(after / before, midAfter.x - view.left, midAfter.y - view.top);
  }

  _dragMarker(point, clientX, clientY) {
    const box = this.img.getBoundingClientRect();
    point.x = round4(clamp01((clientX - box.left) / box.width));
    point.y = round4(clamp01((clientY - box.top) / box.height));
    this._dirty = true;
  }

  _tap(clientX, clientY, timeStamp, marker) {
    if (marker) {
      this.selectedPoint = marker === this.selectedPoint ? null : marker;
      this._changed();
      return;
    }
    const at = this._toImage(clientX, clientY);
    if (!at) return;
    if (!this._editable()) {
      if (this.mode === "point" && this.state === "idle") this._say(t("pointing.record_first", "Press Record first, then point while you speak (or after)."));
      return;
    }
    if (this.mode === "point" && !this.selectedLabel) {
      this._say(t("pointing.pick_label", "Pick a label first, then tap each one you see."));
      return;
    }
    const seconds = this.clock(timeStamp);
    const point = {
      x: round4(at.x),
      y: round4(at.y),
      t: seconds === null ? null : round3(Math.max(0, seconds)),
      label: this.mode === "point" ? this.selectedLabel : null,
    };
    if (this.points.length >= this.maxPoints) return;
    this._do({ kind: "add", point, wasAbsent: this.mode === "point" && this.absent.has(point.label) });
  }

  // ---------- edits (undoable) ----------

  _do(action) {
    this._apply(action, false);
    this.history.push(action);
    this.message = "";
    this._changed();
  }

  undo() {
    const action = this.history.pop();
    if (!action || !this._editable()) {
      if (action) this.history.push(action);
      return;
    }
    this._apply(action, true);
    this._changed();
  }

  _apply(action, undo) {
    const { point } = action;
    if (action.kind === "add") {
      if (undo) this.points.splice(this.points.indexOf(point), 1);
      else this.points.push(point);
      // A point answers its label, so "none in this image" goes; undo brings it back.
      if (action.wasAbsent) (undo ? this.absent.add(point.label) : this.absent.delete(point.label));
      if (undo && this.selectedPoint === point) this.selectedPoint = null;
    } else if (action.kind === "move") {
      Object.assign(point, undo ? action.from : action.to);
    } else if (action.kind === "remove") {
      if (undo) this.points.splice(action.index, 0, point);
      else this.points.splice(action.index, 1);
      this.selectedPoint = undo ? point : null;
    } else if (action.kind === "absent") {
      if (action.on !== undo) this.absent.add(action.label);
      else this.absent.delete(action.label);
    }
  }

  removeSelected() {
    const point = this.selectedPoint;
    if (!point || !this._editable()) return;
    this._do({ kind: "remove", point, index: this.points.indexOf(point) });
  }

  _toggleAbsent(label) {
    if (!this._editable()) return;
    if (!this.absent.has(label) && this._count(label) > 0) {
      this._say(t("pointing.none_has_points", "Remove the points of “{label}” first: they say it is in the image.", { label }));
      return;
    }
    this._do({ kind: "absent", label, on: !this.absent.has(label) });
  }

  _key(event) {
    if (!this.active) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    if ((event.ctrlKey || event.metaKey) && (event.key === "z" || event.key === "Z")) {
      event.preventDefault();
      this.undo();
    } else if ((event.key === "Delete" || event.key === "Backspace") && this.selectedPoint) {
      event.preventDefault();
      this.removeSelected();
    }
  }

  _say(message) {
    this.message = message;
    this._renderPanel();
  }

  _changed() {
    this._dirty = true;
    if (this.active) this.onChange(); // the page renders, which renders the panel
  }

  // ---------- drawing ----------

  _loop() {
    const frame = () => {
      if (this.active) {
        const now = performance.now();
        // A resting pointer keeps its stroke sampled; a stroke left open after recording is closed.
        const resting = this.mode === "narrate" && this.hover && now - this.lastSampleAt >= REST_GAP_S * 1000;
        if (resting) this._sample(this.hover.clientX, this.hover.clientY, now);
        else if (this.stroke && !this._recording()) this.stroke = null;
        if (this._dirty) this._draw();
        // The narrate summary follows the trace while recording (four times a second is plenty).
        if (this.mode === "narrate" && this.stroke && now - (this._summaryAt || 0) > 250) {
          this._summaryAt = now;
          this._renderPanel();
        }
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  _draw() {
    this._dirty = false;
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = this.viewport.clientWidth;
    const height = this.viewport.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    canvas.dataset.samples = String(this.sampleCount);
    canvas.dataset.points = String(this.points.length);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    // The trace: faint, so it does not hide what is being described.
    g.lineWidth = 3;
    g.lineJoin = "round";
    g.lineCap = "round";
    g.strokeStyle = "rgba(255, 214, 10, 0.45)";
    g.shadowColor = "rgba(0, 0, 0, 0.35)";
    g.shadowBlur = 2;
    for (const stroke of this.strokes) {
      g.beginPath();
      stroke.forEach(([x, y], index) => {
        const at = this._toScreen(x, y);
        if (index === 0) g.moveTo(at.x, at.y);
        else g.lineTo(at.x, at.y);
      });
      if (stroke.length === 1) g.lineTo(this._toScreen(stroke[0][0], stroke[0][1]).x + 0.1, this._toScreen(stroke[0][0], stroke[0][1]).y);
      g.stroke();
    }
    g.shadowBlur = 0;
    // Markers, numbered within their label.
    const numbers = new Map();
    g.font = "600 12px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "middle";
    for (const point of this.points) {
      const n = (numbers.get(point.label) || 0) + 1;
      numbers.set(point.label, n);
      const at = this._toScreen(point.x, point.y);
      g.beginPath();
      g.arc(at.x, at.y, MARKER_RADIUS, 0, Math.PI * 2);
      g.fillStyle = this._colour(point.label);
      g.fill();
      g.lineWidth = point === this.selectedPoint ? 4 : 2;
      g.strokeStyle = point === this.selectedPoint ? "#111" : "#fff";
      g.stroke();
      g.fillStyle = "#fff";
      g.fillText(String(n), at.x, at.y + 0.5);
    }
  }

  _colour(label) {
    if (label === null || label === undefined) return NARRATE_COLOUR;
    return COLOURS[Math.max(0, this.labels.indexOf(label)) % COLOURS.length];
  }

  // ---------- the side panel ----------

  _hint() {
    const hint = document.querySelector(".viewer-tools .hint");
    if (!hint) return;
    if (!hint.dataset.describe) hint.dataset.describe = hint.textContent;
    hint.textContent =
      this.mode === "narrate"
        ? t("pointing.hint.narrate", "Move the pointer over what you describe · click to point · drag to pan · scroll to zoom")
        : this.mode === "point"
          ? t("pointing.hint.point", "Click to add a point · drag a point to move it · drag elsewhere to pan · scroll to zoom")
          : hint.dataset.describe;
  }

  _buildPanel() {
    const panel = this.panel;
    panel.hidden = !this.active;
    panel.dataset.mode = this.mode;
    if (!this.active) {
      panel.replaceChildren();
      return;
    }
    const help =
      this.mode === "narrate"
        ? t("pointing.narrate.help", "While you speak, move the pointer (or your finger) over what you describe. Click or tap to point at one thing.")
        : t("pointing.point.help", "Record, then pick a label and tap every one you see; say its name as you point. If there is none, answer “None in this image”.");
    const children = [element("h2", { class: "pointing-title", text: this.mode === "narrate" ? t("pointing.narrate.title", "Point while you speak") : t("pointing.point.title", "Point at each one") }), element("p", { class: "pointing-help small muted", text: help })];
    if (this.mode === "point") {
      const list = element("ul", { class: "label-list", id: "label-list" });
      this.labels.forEach((label, index) => {
        const pick = element("button", { type: "button", class: "label-pick", "aria-pressed": "false" }, element("span", { class: "label-swatch", "aria-hidden": "true" }), element("span", { class: "label-name", text: label }));
        pick.querySelector(".label-swatch").style.background = COLOURS[index % COLOURS.length];
        pick.addEventListener("click", () => {
          this.selectedLabel = label;
          this.message = "";
          this._renderPanel();
        });
        const count = element("span", { class: "label-count", title: t("pointing.count_title", "Points for this label"), text: "0" });
        const none = element("button", { type: "button", class: "btn btn-ghost btn-small label-none", "aria-pressed": "false", text: t("pointing.none", "None in this image") });
        none.addEventListener("click", () => this._toggleAbsent(label));
        const item = element("li", { class: "label-item" }, pick, count, none);
        item.dataset.label = label;
        list.append(item);
      });
      const undo = element("button", { type: "button", class: "btn btn-secondary btn-small", id: "pointing-undo", text: t("pointing.undo", "Undo") });
      undo.addEventListener("click", () => this.undo());
      const remove = element("button", { type: "button", class: "btn btn-ghost btn-small", id: "pointing-remove", text: t("pointing.remove", "Remove point") });
      remove.addEventListener("click", () => this.removeSelected());
      children.push(list, element("div", { class: "pointing-tools" }, undo, remove));
    }
    children.push(element("p", { class: "pointing-status small", id: "pointing-status", role: "status", "aria-live": "polite" }));
    panel.replaceChildren(...children);
  }

  _renderPanel() {
    const panel = this.panel;
    const editable = this._editable();
    const status = panel.querySelector("#pointing-status");
    if (this.mode === "narrate") {
      const seconds = this.strokes.reduce((sum, s) => sum + (s.length > 1 ? s[s.length - 1][2] - s[0][2] : 0), 0);
      if (status)
        status.textContent =
          this.message ||
          (this.points.length === 1
            ? t("pointing.narrate.summary_one", "Traced {seconds} s · 1 point", { seconds: seconds.toFixed(1) })
            : t("pointing.narrate.summary", "Traced {seconds} s · {points} points", { seconds: seconds.toFixed(1), points: this.points.length }));
      return;
    }
    for (const item of panel.querySelectorAll(".label-item")) {
      const label = item.dataset.label;
      const count = this._count(label);
      item.querySelector(".label-count").textContent = String(count);
      const pick = item.querySelector(".label-pick");
      pick.setAttribute("aria-pressed", String(label === this.selectedLabel));
      const none = item.querySelector(".label-none");
      none.setAttribute("aria-pressed", String(this.absent.has(label)));
      none.disabled = !editable;
      item.dataset.answered = String(this.absent.has(label) || count > 0);
    }
    panel.querySelector("#pointing-undo").disabled = !editable || !this.history.length;
    panel.querySelector("#pointing-remove").disabled = !editable || !this.selectedPoint;
    const left = this.labels.filter((label) => !this.absent.has(label) && this._count(label) === 0).length;
    status.dataset.kind = this.message ? "warn" : left ? "todo" : "done";
    status.textContent =
      this.message ||
      (left
        ? t("pointing.left", "{left} of {total} labels still to answer: point at each one, or “None in this image”.", { left, total: this.labels.length })
        : t("pointing.all_answered", "Every label is answered."));
  }
}
