// @ts-check
// Thumbs on a cell: ▲ / ▼ buttons in its top line, and on a focused cell the keys + or u (up),
// - or d (down), 0 (clear). A click or key raises a bubbling "lmw-rate" event with the value
// (null when the same thumb is pressed again); the view sends it to the kernel, which records it
// and sends the cell back with its `rating`. Nothing here talks to the model.
import { button, h, listen } from "./dom.js";

/** @typedef {import("./types.js").Cell} Cell */

/** The keys of a focused cell, and the rating each gives. */
const KEYS = /** @type {Record<string, "up" | "down" | null>} */ ({
  "+": "up",
  "=": "up",
  u: "up",
  "-": "down",
  d: "down",
  0: null,
});

/**
 * @typedef {object} RatingBar
 * @property {HTMLSpanElement} el
 * @property {HTMLButtonElement} up
 * @property {HTMLButtonElement} down
 * @property {string} value the rating last drawn ("up", "down" or "")
 */

/**
 * Raise the rating event on ``target`` (it bubbles to the view).
 * @param {HTMLElement} target
 * @param {"up" | "down" | null} value
 */
function rate(target, value) {
  target.dispatchEvent(new CustomEvent("lmw-rate", { bubbles: true, detail: { value } }));
}

/**
 * The thumbs of one cell, listening on ``col`` for its keys (they live as long as the cell).
 * @param {HTMLElement} col
 * @returns {RatingBar}
 */
export function ratingBar(col) {
  const el = h("span", "lmw-rate");
  el.setAttribute("role", "group");
  el.setAttribute("aria-label", "your rating");
  const up = button("lmw-thumb lmw-up", "▲", "Thumbs up (key + or u on the cell; again to clear)");
  const down = button("lmw-thumb lmw-down", "▼", "Thumbs down (key - or d on the cell; again to clear)");
  up.setAttribute("aria-label", "thumbs up");
  down.setAttribute("aria-label", "thumbs down");
  el.append(up, down);
  /** @type {RatingBar} */
  const bar = { el, up, down, value: "" };
  listen(up, "click", () => rate(col, bar.value === "up" ? null : "up"));
  listen(down, "click", () => rate(col, bar.value === "down" ? null : "down"));
  listen(col, "keydown", (/** @type {KeyboardEvent} */ event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    if (col.dataset.rate !== "1" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest("select, input, textarea, summary")) return;
    if (!(event.key in KEYS)) return;
    // Stopped here: JupyterLab's command-mode shortcuts (d d deletes a cell) never see it.
    event.preventDefault();
    event.stopPropagation();
    const value = KEYS[event.key];
    rate(col, value !== null && value === bar.value ? null : value);
  });
  return bar;
}

/**
 * Draw the cell's rating; ``on`` says whether the run may be rated now (finished).
 * @param {RatingBar} bar
 * @param {HTMLElement} col
 * @param {Cell} data
 * @param {boolean} on
 */
export function fillRating(bar, col, data, on) {
  const value = on && !data.previous ? data.rating || "" : "";
  bar.value = value;
  bar.el.style.display = on && !data.previous ? "" : "none";
  bar.up.setAttribute("aria-pressed", String(value === "up"));
  bar.down.setAttribute("aria-pressed", String(value === "down"));
  if (value) col.dataset.rating = value;
  else delete col.dataset.rating;
  const ratable = on && !data.previous;
  col.dataset.rate = ratable ? "1" : "";
  if (ratable && col.tabIndex < 0) col.tabIndex = 0;
  else if (!ratable && col.hasAttribute("tabindex")) col.removeAttribute("tabindex");
}
