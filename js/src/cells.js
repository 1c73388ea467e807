// @ts-check
// The columns (or the dataset grid): each cell's label, streamed text, answer chip, stats, note,
// and the boxes its answer named, drawn over a thumbnail. All of it is set as text.
import { h } from "./dom.js";
import { overlay, thumbnail } from "./images.js";

/** @typedef {import("./types.js").Box} Box */
/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").Model} Model */
/** @typedef {import("./types.js").Thumb} Thumb */

/**
 * @typedef {object} CellView
 * @property {HTMLDivElement} col
 * @property {HTMLDivElement} label
 * @property {HTMLDivElement} boxes
 * @property {HTMLPreElement} text
 * @property {HTMLDivElement} answer
 * @property {HTMLDivElement} stats
 * @property {HTMLDivElement} note
 * @property {string} boxKey what the boxes were last drawn from
 */

/** @returns {CellView} */
function cellView() {
  const col = h("div", "lmw-col");
  const label = h("div", "lmw-label");
  const boxes = h("div", "lmw-colboxes");
  const text = h("pre", "lmw-text");
  const answer = h("div", "lmw-answer");
  const stats = h("div", "lmw-stats");
  const note = h("div", "lmw-note");
  col.append(label, boxes, text, answer, stats, note);
  return { col, label, boxes, text, answer, stats, note, boxKey: "" };
}

/** @param {Box} b */
function boxText(b) {
  const r = Math.round;
  return `${b.label || "box"}: (${r(b.x1)}, ${r(b.y1)}) – (${r(b.x2)}, ${r(b.y2)})`;
}

/**
 * The cell's boxes drawn over a thumbnail of the image they refer to, plus a text list.
 * @param {CellView} v
 * @param {Cell} data
 * @param {Thumb[]} images
 */
function fillBoxes(v, data, images) {
  const boxes = data.boxes || [];
  const key = JSON.stringify(boxes) + images.length;
  if (key === v.boxKey) return;
  v.boxKey = key;
  v.boxes.replaceChildren();
  if (!boxes.length) return;
  /** @type {Map<number, Box[]>} */
  const byImage = new Map();
  for (const b of boxes) {
    const index = b.image || 0;
    if (!images[index]) continue;
    byImage.set(index, [...(byImage.get(index) || []), b]);
  }
  for (const [index, list] of byImage) {
    const image = images[index];
    const frame = thumbnail(image, "lmw-thumb lmw-boxed");
    for (const b of list) frame.append(overlay("lmw-box", image, [b.x1, b.y1, b.x2, b.y2], b.label));
    v.boxes.append(frame);
  }
  v.boxes.append(h("div", "lmw-boxlist", boxes.map(boxText).join(" · ")));
}

/**
 * @param {CellView} v
 * @param {Cell} data
 * @param {boolean} showLabel
 */
function fillCell(v, data, showLabel) {
  v.col.dataset.status = data.status || "";
  v.label.textContent = showLabel ? data.label || "" : "";
  v.label.style.display = showLabel ? "" : "none";
  const text = data.text || "";
  const atBottom = v.text.scrollHeight - v.text.scrollTop - v.text.clientHeight < 24;
  if (v.text.textContent !== text) v.text.textContent = text;
  if (atBottom) v.text.scrollTop = v.text.scrollHeight;
  v.answer.replaceChildren();
  if (data.answer !== null && data.answer !== undefined) {
    v.answer.append("Answer: ", h("code", "", data.answer));
  }
  v.stats.textContent = data.stats || "";
  v.note.textContent = data.note || "";
}

/** The body of the view: one cell view per column, or a grid with row and column headers. */
export class CellsView {
  /** @param {HTMLElement} body */
  constructor(body) {
    this.body = body;
    /** @type {Map<string, CellView>} "row:col" -> cell view */
    this.cells = new Map();
    /** @type {Map<number, HTMLPreElement>} */
    this.rowHeads = new Map();
    this.shape = "";
  }

  /**
   * @param {Model} model
   * @param {Cell[]} data the store's cells
   * @param {number[] | null} changed indexes to refresh (null: all)
   */
  render(model, data, changed) {
    const layout = model.get("layout") || "columns";
    const labels = model.get("labels") || [];
    const grid = layout === "grid";
    const nrows = grid ? Math.max(0, ...data.map((d) => (d.row || 0) + 1)) : 1;
    const ncols = grid ? labels.length : data.length;
    const shape = `${layout}|${nrows}|${ncols}|${labels.join("\u0000")}`;
    if (shape !== this.shape) {
      if (grid) this.buildGrid(labels, nrows);
      else this.buildColumns(ncols);
      this.shape = shape;
      changed = null;
    }
    const images = model.get("images") || [];
    for (const i of changed || data.keys()) {
      const d = data[i];
      if (!d) continue;
      const v = this.cells.get(grid ? `${d.row || 0}:${d.col || 0}` : `0:${i}`);
      if (v) {
        fillCell(v, d, !grid);
        fillBoxes(v, d, images);
      }
      const rowHead = grid ? this.rowHeads.get(d.row || 0) : undefined;
      if (rowHead && rowHead.textContent !== d.row_label) rowHead.textContent = d.row_label || "";
    }
    this.renderScores(model);
  }

  /** @param {number} ncols */
  buildColumns(ncols) {
    this.reset();
    const columns = h("div", "lmw-columns");
    columns.style.setProperty("--lmw-ncols", String(Math.min(Math.max(ncols, 1), 4)));
    for (let c = 0; c < ncols; c++) columns.append(this.addCell(0, c));
    this.body.append(columns);
  }

  /**
   * @param {string[]} labels
   * @param {number} nrows
   */
  buildGrid(labels, nrows) {
    this.reset();
    const grid = h("div", "lmw-grid");
    grid.style.setProperty("--lmw-ncols", String(labels.length));
    grid.append(h("div", "lmw-head lmw-rowhead", "input"));
    labels.forEach((label, c) => {
      const head = h("div", "lmw-head");
      head.append(h("div", "lmw-label", label), h("div", "lmw-score"));
      head.dataset.col = String(c);
      grid.append(head);
    });
    for (let r = 0; r < nrows; r++) {
      const rowHead = h("pre", "lmw-rowlabel");
      rowHead.dataset.row = String(r);
      this.rowHeads.set(r, rowHead);
      grid.append(rowHead);
      for (let c = 0; c < labels.length; c++) grid.append(this.addCell(r, c));
    }
    this.body.append(grid);
  }

  reset() {
    this.body.replaceChildren();
    this.cells = new Map();
    this.rowHeads = new Map();
  }

  /**
   * @param {number} row
   * @param {number} col
   */
  addCell(row, col) {
    const v = cellView();
    this.cells.set(`${row}:${col}`, v);
    return v.col;
  }

  /** Grid: accuracy per column under its header. @param {Model} model */
  renderScores(model) {
    const scores = model.get("scores") || {};
    const labels = model.get("labels") || [];
    for (const head of this.body.querySelectorAll(".lmw-head[data-col]")) {
      const label = labels[Number(/** @type {HTMLElement} */ (head).dataset.col)];
      const score = head.querySelector(".lmw-score");
      if (!score) continue;
      score.textContent = label in scores ? `accuracy ${(100 * scores[label]).toFixed(0)}%` : "";
    }
  }
}
