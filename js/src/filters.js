// @ts-check
// The dataset grid's filter: every row, only the wrong cells, or only the rows whose columns
// disagree. Pure functions of the cells (their `correct` and agreement `group`), and the
// agreement marks (`agreeMarks`): which cells differ.

/** @typedef {import("./types.js").Cell} Cell */

/** @type {[string, string][]} value, label */
export const FILTERS = [
  ["all", "all"],
  ["wrong", "wrong only"],
  ["disagree", "disagreeing only"],
];

/**
 * Whether the answers of a row's cells differ (a cell without an answer differs from one with).
 * @param {Cell[]} cells
 */
export function rowDisagrees(cells) {
  if (cells.length < 2) return false;
  const groups = new Set(cells.map((c) => (typeof c.group === "number" ? c.group : null)));
  return groups.size > 1;
}

/**
 * Whether a row is shown under filter ``mode``.
 * @param {string} mode
 * @param {Cell[]} cells
 */
export function rowShown(mode, cells) {
  if (mode === "wrong") return cells.some((c) => c.correct === false);
  if (mode === "disagree") return rowDisagrees(cells);
  return true;
}

/**
 * Whether a cell of a shown row is shown under filter ``mode`` ("wrong": only wrong cells).
 * @param {string} mode
 * @param {Cell} cell
 */
export function cellShown(mode, cell) {
  return mode !== "wrong" || cell.correct === false;
}

/**
 * Each cell's agreement mark from its answer's group (null: no answer), symmetric in the cells,
 * as `Agreement.marks` in Python: "all" (every cell agrees), "major" (the one group larger than
 * every other), "minor" (an answer that differs: the minority, or every answer when no group
 * is larger than the others, as in a 1-1 split), "" (no answer). Never a cell by its position.
 * @param {(number | null)[]} groups
 * @returns {string[]}
 */
export function agreeMarks(groups) {
  /** @type {Map<number, number>} */
  const counts = new Map();
  for (const g of groups) if (g !== null) counts.set(g, (counts.get(g) || 0) + 1);
  if (groups.length > 1 && counts.size === 1 && !groups.includes(null)) {
    return groups.map(() => "all");
  }
  const top = Math.max(0, ...counts.values());
  const leaders = [...counts].filter(([, n]) => n === top).map(([g]) => g);
  const major = leaders.length === 1 ? leaders[0] : null;
  return groups.map((g) => (g === null ? "" : g === major ? "major" : "minor"));
}
