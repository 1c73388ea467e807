// @ts-check
// The dataset grid's filter: every row, only the wrong cells, or only the rows whose columns
// disagree. Pure functions of the cells (their `correct` and agreement `group`).

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
