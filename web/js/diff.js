// Word-level diff of a caption against the transcript it was cleaned from.
// Words are compared loosely (case and punctuation ignored), so the diff shows what the cleaner or the
// reviewer changed in substance, not every comma. Longest common subsequence over words: O(n·m), which
// is fine for descriptions of a few hundred words; past LIMIT cells it falls back to a coarse answer.

const LIMIT = 4_000_000;

export function tokens(text) {
  return (text || "").split(/\s+/).filter(Boolean);
}

export function normal(word) {
  return word.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}

// Returns [{op: "same" | "add" | "del", text}] turning `before` into `after`, runs merged.
export function wordDiff(before, after) {
  const a = tokens(before);
  const b = tokens(after);
  const na = a.map(normal);
  const nb = b.map(normal);
  const n = a.length;
  const m = b.length;
  if ((n + 1) * (m + 1) > LIMIT) {
    return merge([...a.map((t) => ({ op: "del", text: t })), ...b.map((t) => ({ op: "add", text: t }))]);
  }
  const { lcs, width } = lcsTable(na, nb);
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (na[i] === nb[j]) {
      ops.push({ op: "same", text: b[j] });
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
      ops.push({ op: "del", text: a[i++] });
    } else {
      ops.push({ op: "add", text: b[j++] });
    }
  }
  while (i < n) ops.push({ op: "del", text: a[i++] });
  while (j < m) ops.push({ op: "add", text: b[j++] });
  return merge(ops);
}

// lcs[i][j] = LCS length of a[i:] and b[j:], in one flat typed array.
function lcsTable(na, nb) {
  const n = na.length;
  const m = nb.length;
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        na[i] === nb[j] ? lcs[(i + 1) * width + j + 1] + 1 : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  return { lcs, width };
}

// For each word of `after`, the index of the word of `before` it is (compared loosely), or -1: which
// transcript word a caption word came from, so the caption can show how sure the recogniser was.
export function alignWords(before, after) {
  const na = before.map(normal);
  const nb = after.map(normal);
  const matched = new Array(after.length).fill(-1);
  if ((na.length + 1) * (nb.length + 1) > LIMIT) return matched;
  const { lcs, width } = lcsTable(na, nb);
  let i = 0;
  let j = 0;
  while (i < na.length && j < nb.length) {
    if (na[i] === nb[j] && na[i]) matched[j++] = i++;
    else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) i++;
    else j++;
  }
  return matched;
}

function merge(ops) {
  const out = [];
  for (const item of ops) {
    const last = out[out.length - 1];
    if (last && last.op === item.op) last.text += " " + item.text;
    else out.push({ ...item });
  }
  return out;
}

// Counts for a one-line summary: words kept, added and removed.
export function diffSummary(ops) {
  const count = { same: 0, add: 0, del: 0 };
  for (const item of ops) count[item.op] += tokens(item.text).length;
  return count;
}

// Renders the diff into `container` with <ins>/<del>, safely (text nodes only).
export function renderDiff(container, ops) {
  container.replaceChildren();
  ops.forEach((item, index) => {
    if (index > 0) container.append(" ");
    if (item.op === "same") {
      container.append(item.text);
    } else {
      const node = document.createElement(item.op === "add" ? "ins" : "del");
      node.textContent = item.text;
      container.append(node);
    }
  });
}
