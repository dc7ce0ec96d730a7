// The dashboard: live counts (polled), daily charts (uPlot, served locally), grouped figures and QC.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api, el, errorText, fillSelect, fmt, pct, renderTopbar, requireLead, toast } from "./lead.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 5000;

const COLUMNS = [
  ["images_done", "images done", (v) => fmt(v)],
  ["takes", "takes", (v) => fmt(v)],
  ["audio_hours", "audio hours", (v) => fmt(v, 2)],
  ["median_seconds_per_take", "median s/take", (v) => fmt(v)],
  ["words_per_caption", "words/caption", (v) => fmt(v)],
  ["reviewed", "reviewed", (v) => fmt(v)],
  ["approval_rate", "approved", pct],
  ["rejection_rate", "rejected", pct],
  ["takes_per_day", "takes/day", (v) => fmt(v)],
];

const TILES = [
  ["review_queue", "to review", (l) => l.review_queue],
  ["flagged_pending", "flagged, to review", (l) => l.flagged_pending, true],
  ["uploaded", "waiting to transcribe", (l) => l.recordings.uploaded + l.recordings.transcribing],
  ["transcribed", "waiting to clean", (l) => l.recordings.transcribed + l.recordings.cleaning],
  ["captioned", "captioned takes", (l) => l.recordings.captioned],
  ["failed", "failed", (l) => l.recordings.failed, true],
  ["rejected", "rejected takes", (l) => l.recordings.rejected],
  ["reviews", "decisions, last 24 h", (l) => l.reviews_last_24h],
  ["images", "images complete", (l) => `${l.images_complete} / ${l.images}`],
];

let charts = [];
let lastLive = "";

function projectParam() {
  const value = $("project").value;
  return value ? `project=${value}` : "";
}

// --- live counts -------------------------------------------------------------------------------------

async function pollLive() {
  try {
    const live = await api(`/api/stats/live?${projectParam()}`);
    renderTiles(live);
    $("live-state").replaceChildren(el("span", { class: "live-dot" }), `live · ${new Date().toLocaleTimeString()}`);
    // Counts moved: the figures behind them did too.
    const signature = JSON.stringify([live.recordings, live.captions]);
    if (lastLive && signature !== lastLive) refresh().catch(() => {});
    lastLive = signature;
  } catch (error) {
    $("live-state").replaceChildren(el("span", { class: "live-dot stale" }), `not updating: ${errorText(error)}`);
  }
}

function renderTiles(live) {
  $("tiles").replaceChildren(
    ...TILES.map(([key, label, value, alert]) => {
      const v = value(live);
      return el(
        "div",
        { class: `tile${alert && v > 0 ? " alert" : ""}`, dataset: { tile: key } },
        el("div", { class: "value" }, String(v)),
        el("div", { class: "label" }, label),
      );
    }),
  );
}

// --- charts and tables -------------------------------------------------------------------------------

function drawCharts(days) {
  for (const chart of charts) chart.destroy();
  charts = [];
  const x = days.map((d) => Date.parse(`${d.key}T00:00:00Z`) / 1000);
  const box = $("chart-throughput");
  const width = Math.max(box.clientWidth, 320);
  if (!x.length) {
    $("chart-throughput").replaceChildren(el("p", { class: "muted" }, "No takes yet."));
    $("chart-audio").replaceChildren(el("p", { class: "muted" }, "No takes yet."));
    return;
  }
  $("chart-throughput").replaceChildren();
  $("chart-audio").replaceChildren();
  // Half a day either side of the data: uPlot's own range for one day of data ran over years.
  const range = [x[0] - 43200, x[x.length - 1] + 43200];
  // The range shown, on the chart's box, for people who script the page (and for the tests).
  const shown = (u, key) => {
    if (key !== "x" || u.scales.x.min === null) return;
    u.root.parentElement.dataset.xMin = u.scales.x.min;
    u.root.parentElement.dataset.xMax = u.scales.x.max;
  };
  const common = {
    width,
    height: 240,
    scales: { x: { time: true, range } },
    legend: { live: false },
    hooks: { setScale: [shown] },
  };
  charts.push(
    new uPlot(
      {
        ...common,
        series: [
          {},
          { label: "takes", stroke: "#2f6fdf", width: 2, fill: "rgba(47,111,223,0.08)" },
          { label: "approved", stroke: "#1f8a4c", width: 2 },
          { label: "rejected", stroke: "#c23a3a", width: 2 },
        ],
      },
      [x, days.map((d) => d.takes), days.map((d) => d.approved), days.map((d) => d.rejected)],
      $("chart-throughput"),
    ),
  );
  charts.push(
    new uPlot(
      {
        ...common,
        series: [{}, { label: "audio minutes", stroke: "#b7791f", width: 2, fill: "rgba(183,121,31,0.1)" }],
      },
      [x, days.map((d) => Math.round(d.audio_hours * 600) / 10)],
      $("chart-audio"),
    ),
  );
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function renderActivity(figures) {
  const { skips, reviewers, upload_to_caption: wait } = figures;
  $("skip-total").textContent = `${skips.total} in all`;
  $("skips").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "reason"), el("th", {}, "skips"))),
    el(
      "tbody",
      {},
      skips.reasons.length
        ? skips.reasons.map((r) => el("tr", {}, el("td", {}, r.label), el("td", {}, r.count)))
        : el("tr", {}, el("td", { colspan: 2 }, "No skips.")),
    ),
  );
  const columns = ["day", "reviewer", "decisions", "approved", "rejected"];
  $("reviewers").replaceChildren(
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el(
      "tbody",
      {},
      reviewers.length
        ? reviewers.slice(0, 60).map((r) => el("tr", {}, columns.map((c) => el("td", {}, r[c]))))
        : el("tr", {}, el("td", { colspan: columns.length }, "No decisions yet.")),
    ),
  );
  $("upload-wait").replaceChildren(
    wait.count
      ? el(
          "span",
          {},
          el("b", {}, duration(wait.median_seconds)),
          ` median · ${duration(wait.p90_seconds)} for 9 in 10 · slowest ${duration(wait.max_seconds)} · ${wait.count} takes`,
        )
      : "No captions yet.",
  );
}

function renderStats(result) {
  const by = result.by;
  $("table-title").textContent = `By ${by}`;
  const head = el("tr", {}, el("th", {}, by), COLUMNS.map(([, label]) => el("th", {}, label)));
  const rows = result.rows.map((row) =>
    el("tr", {}, el("td", {}, row.key), COLUMNS.map(([key, , f]) => el("td", {}, f(row[key])))),
  );
  const total = el(
    "tr",
    { class: "total" },
    el("td", {}, "all"),
    COLUMNS.map(([key, , f]) => el("td", {}, f(result.totals[key]))),
  );
  const empty = result.rows.length ? [] : [el("tr", {}, el("td", { colspan: COLUMNS.length + 1 }, "Nothing yet."))];
  $("stats-table").replaceChildren(el("thead", {}, head), el("tbody", {}, rows, empty, total));
}

const QC_METRICS = [
  ["words_per_minute", "wpm"],
  ["duration_seconds", "seconds"],
  ["silence_fraction", "silence"],
  ["transcript_words", "words"],
  ["faithfulness", "faithfulness"],
];

function renderQc(report) {
  const head = el(
    "tr",
    {},
    el("th", {}, "annotator"),
    el("th", {}, "takes"),
    el("th", {}, "flagged"),
    QC_METRICS.map(([, label]) => el("th", {}, `median ${label}`)),
    el("th", { class: "text" }, "outliers"),
  );
  const rows = report.annotators.map((a) =>
    el(
      "tr",
      { dataset: { annotator: a.annotator } },
      el("td", {}, a.annotator),
      el("td", {}, a.takes),
      el("td", {}, a.flagged_takes),
      QC_METRICS.map(([metric]) => {
        const z = a[`z_${metric}`];
        const value = a[`median_${metric}`];
        const shown = metric === "silence_fraction" ? pct(value) : fmt(value, metric === "faithfulness" ? 2 : 1);
        return el("td", { class: Math.abs(z) >= 3.5 ? "outlier" : "", title: `robust z ${z}` }, shown);
      }),
      el("td", { class: a.outliers.length ? "text outlier" : "text" }, a.outliers.join(", ").replaceAll("_", " ") || "–"),
    ),
  );
  $("qc-annotators").replaceChildren(el("thead", {}, head), el("tbody", {}, rows));

  const flagSelect = $("qc-flag");
  const options = Object.entries(report.flag_counts).map(([flag, n]) => ({
    value: flag,
    label: `${flag.replaceAll("_", " ")} (${n})`,
  }));
  fillSelect(flagSelect, [{ value: "any", label: "Any flag" }, ...options]);

  const takes = report.takes.filter((t) => t.flags.length);
  $("qc-count").textContent = `${report.total} matching`;
  const takeHead = el(
    "tr",
    {},
    ["take", "annotator", "seconds", "silence", "wpm", "words", "faithfulness", "flags", ""].map((h) =>
      el("th", { class: h === "flags" ? "text" : "" }, h),
    ),
  );
  const takeRows = takes.map((t) =>
    el(
      "tr",
      {},
      el("td", {}, `#${t.recording_id}`),
      el("td", {}, t.annotator),
      el("td", {}, fmt(t.duration_seconds)),
      el("td", {}, pct(t.silence_fraction)),
      el("td", {}, fmt(t.words_per_minute, 0)),
      el("td", {}, fmt(t.transcript_words, 0)),
      el("td", {}, fmt(t.faithfulness, 2)),
      el("td", { class: "text" }, t.flags.join(", ").replaceAll("_", " ")),
      el("td", {}, t.caption_id ? el("a", { href: `/review?state=all&caption=${t.caption_id}` }, "review") : ""),
    ),
  );
  const none = takes.length ? [] : [el("tr", {}, el("td", { colspan: 9 }, "No flagged takes."))];
  $("qc-takes").replaceChildren(el("thead", {}, takeHead), el("tbody", {}, takeRows, none));
}

async function refresh() {
  const project = projectParam();
  const by = $("by").value;
  const flag = $("qc-flag").value || "any";
  const [grouped, days, qc, activity] = await Promise.all([
    api(`/api/stats?by=${by}&${project}`),
    by === "day" ? null : api(`/api/stats?by=day&${project}`),
    api(`/api/qc?flag=${encodeURIComponent(flag)}&limit=200&${project}`),
    api(`/api/stats/activity?${project}`),
  ]);
  renderStats(grouped);
  renderActivity(activity);
  drawCharts((days || grouped).rows);
  renderQc(qc);
}

async function main() {
  const me = await requireLead();
  renderTopbar(me);
  const choices = await api("/api/review/choices");
  fillSelect($("project"), choices.projects.map((p) => ({ value: p.id, label: p.name })), { any: "All projects" });
  const params = new URLSearchParams(location.search);
  if (params.has("project")) $("project").value = params.get("project");
  if (params.has("by")) $("by").value = params.get("by");
  for (const id of ["project", "by", "qc-flag"]) {
    $(id).addEventListener("change", () => {
      const url = new URL(location.href);
      url.searchParams.set("by", $("by").value);
      if ($("project").value) url.searchParams.set("project", $("project").value);
      else url.searchParams.delete("project");
      history.replaceState(null, "", url);
      lastLive = "";
      refresh().catch((error) => toast(errorText(error), "error"));
      if (id === "project") pollLive();
    });
  }
  await Promise.all([refresh(), pollLive()]);
  setInterval(() => {
    if (!document.hidden) pollLive();
  }, POLL_MS);
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => refresh().catch(() => {}), 250);
  });
}

main().catch((error) => {
  if (error.message !== "not a lead" && error.code !== "not_authenticated") toast(errorText(error), "error");
});
