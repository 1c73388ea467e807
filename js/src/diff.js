// @ts-check
// A word diff of two texts (Myers' O(ND) algorithm over words, spaces and punctuation marks).
// Pure functions: no DOM here (cells.js renders the parts; tests run this file in node).

/** @typedef {{ op: "eq" | "ins" | "del", text: string }} DiffPart */

/** More edits than this and the middle is shown as replaced whole (bounded time and memory). */
export const MAX_EDITS = 2000;

/**
 * ``text`` split into words, runs of whitespace and single punctuation marks (joined: ``text``).
 * @param {string} text
 * @returns {string[]}
 */
export function words(text) {
  return text.match(/\s+|[\p{L}\p{N}_'’-]+|[^\s\p{L}\p{N}_'’-]/gu) || [];
}

/**
 * The shortest edit script turning ``a`` into ``b`` (Myers), as parts in order; null when it
 * needs more than ``maxEdits`` edits.
 * @param {string[]} a
 * @param {string[]} b
 * @param {number} maxEdits
 * @returns {DiffPart[] | null}
 */
function myers(a, b, maxEdits) {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const limit = Math.min(max, maxEdits);
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  /** @type {Int32Array[]} v before step d, for k in [-d-1, d+1] (index k + d + 1) */
  const trace = [];
  let found = -1;
  for (let d = 0; d <= limit && found < 0; d++) {
    trace.push(v.slice(off - d - 1, off + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return null;
  /** @type {DiffPart[]} reversed */
  const out = [];
  let x = n;
  let y = m;
  for (let d = found; d >= 0; d--) {
    const snap = trace[d];
    /** @param {number} k */
    const at = (k) => snap[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: "eq", text: a[x - 1] });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === prevX) out.push({ op: "ins", text: b[prevY] });
      else out.push({ op: "del", text: a[prevX] });
    }
    x = prevX;
    y = prevY;
  }
  return out.reverse();
}

/**
 * Adjacent parts of the same kind joined; empty parts dropped.
 * @param {DiffPart[]} parts
 * @returns {DiffPart[]}
 */
function merge(parts) {
  /** @type {DiffPart[]} */
  const out = [];
  for (const part of parts) {
    if (!part.text) continue;
    const last = out[out.length - 1];
    if (last && last.op === part.op) last.text += part.text;
    else out.push({ ...part });
  }
  return out;
}

/**
 * The word diff from ``before`` to ``after``: parts to show in order, ``ins`` only in
 * ``after``, ``del`` only in ``before``, ``eq`` in both. Joining the eq and del parts gives
 * ``before``; the eq and ins parts give ``after``.
 * @param {string} before
 * @param {string} after
 * @param {number} [maxEdits]
 * @returns {{ parts: DiffPart[], approximate: boolean }} approximate: too different to diff
 *   word by word (the differing middle is shown deleted, then inserted)
 */
export function wordDiff(before, after, maxEdits = MAX_EDITS) {
  const a = words(before);
  const b = words(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const head = { op: /** @type {const} */ ("eq"), text: a.slice(0, start).join("") };
  const tail = { op: /** @type {const} */ ("eq"), text: a.slice(endA).join("") };
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const middle = myers(midA, midB, maxEdits);
  const approximate = middle === null;
  const body = middle ?? [
    { op: /** @type {const} */ ("del"), text: midA.join("") },
    { op: /** @type {const} */ ("ins"), text: midB.join("") },
  ];
  return { parts: merge([head, ...body, tail]), approximate };
}

/**
 * How many words (not spaces or punctuation) were inserted and deleted.
 * @param {DiffPart[]} parts
 */
export function diffCounts(parts) {
  let ins = 0;
  let del = 0;
  for (const part of parts) {
    const n = words(part.text).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
    if (part.op === "ins") ins += n;
    if (part.op === "del") del += n;
  }
  return { ins, del };
}
