// @ts-check
// The token view of a cell: its text as one span per generated token, shaded by probability
// (six buckets, from none at p >= 0.9 to the theme's error colour below 0.1: prompt.css), with
// the divergence marker before the token where it parts from a sibling column, and the legend.
// Token texts come from the model: they are set with textContent only.
import { h } from "./dom.js";

/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").TokenEntry} TokenEntry */

/** A cell carries at most this many tokens (MAX_CELL_TOKENS in prompt_view.py). */
const MAX_CELL_TOKENS = 4000;

/** Lower bounds of the shading buckets, from the most likely (bucket 5) down (bucket 0). */
export const BUCKETS = [0.9, 0.7, 0.5, 0.3, 0.1, 0];

/**
 * The shading bucket of probability ``p``: 5 (p >= 0.9, unshaded) down to 0 (p < 0.1).
 * @param {number} p
 */
export function bucket(p) {
  const i = BUCKETS.findIndex((low) => p >= low);
  return i < 0 ? 0 : BUCKETS.length - 1 - i;
}

/** The legend's swatches: [bucket, label]. */
export const LEGEND = /** @type {[number, string][]} */ ([
  [5, "p ≥ 0.9"],
  [4, "≥ 0.7"],
  [3, "≥ 0.5"],
  [2, "≥ 0.3"],
  [1, "≥ 0.1"],
  [0, "p < 0.1"],
]);

/** The legend shown in the header while the token view is on. */
export function legend() {
  const box = h("span", "lmw-legend");
  box.setAttribute("aria-label", "token shading: probability of each token");
  for (const [b, label] of LEGEND) {
    const swatch = h("span", "lmw-swatch lmw-tok", label);
    swatch.dataset.b = String(b);
    box.append(swatch);
  }
  return box;
}

/**
 * A token's text as a popover shows it: spaces and line breaks made visible.
 * @param {string} text
 */
export function visible(text) {
  return text.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥") || "∅";
}

/**
 * Where each entry sits: its position among its sample's tokens and its sample (separators,
 * p null, start a new sample and have position -1).
 * @param {TokenEntry[]} tokens
 * @returns {{ position: number, sample: number }[]}
 */
export function positions(tokens) {
  const several = tokens.some((t) => t[1] === null || t[1] === undefined);
  let sample = several ? -1 : 0;
  let position = 0;
  return tokens.map((t) => {
    if (t[1] === null || t[1] === undefined) {
      sample++;
      position = 0;
      return { position: -1, sample };
    }
    return { position: position++, sample: Math.max(sample, 0) };
  });
}

/**
 * State of one cell's token rendering (kept on its cell view to append while streaming).
 * @typedef {object} TokenState
 * @property {TokenEntry[] | null} ref the token list last drawn
 * @property {number} count how many of its entries are drawn
 * @property {string} key what else the drawing depends on (divergence, the text's tail)
 * @property {number} sample the sample of the last drawn entry
 * @property {number} position the next token's position in that sample
 * @property {Text | null} rest the text past the last token (tokens cut at the cell limit)
 * @property {boolean} focusable whether a token in the Tab order was drawn (the first one)
 */

/** @returns {TokenState} */
export function tokenState() {
  return { ref: null, count: 0, key: "", sample: 0, position: 0, rest: null, focusable: false };
}

/**
 * One span per token in ``el`` (appending only the new ones while the list grows in place).
 * Spans carry data-i (their index in the cell's tokens), data-b (their bucket) and a tabindex
 * (0 for the first token, -1 for the others: the arrow keys move between them).
 * @param {HTMLElement} el the cell's text element
 * @param {Cell} cell
 * @param {TokenState} state
 */
export function renderTokens(el, cell, state) {
  const tokens = cell.tokens || [];
  const diverge = cell.diverge || null;
  const key = JSON.stringify(diverge);
  const fresh = state.ref !== tokens || state.key !== key || state.count > tokens.length;
  if (fresh) {
    el.replaceChildren();
    Object.assign(state, tokenState(), { ref: tokens, key });
    state.sample = tokens.some((t) => t[1] === null || t[1] === undefined) ? -1 : 0;
  }
  if (state.rest) state.rest.remove();
  const frag = document.createDocumentFragment();
  for (let i = state.count; i < tokens.length; i++) {
    const [text, p, , , forced] = tokens[i];
    if (p === null || p === undefined) {
      state.sample++;
      state.position = 0;
      frag.append(h("span", "lmw-tokgap", text));
      continue;
    }
    const position = state.position++;
    if (diverge && position === diverge.at && state.sample <= 0) frag.append(marker(diverge));
    const span = h("span", "lmw-tok", text);
    span.dataset.i = String(i);
    span.dataset.b = String(bucket(p));
    if (forced) span.dataset.forced = "1"; // forced by the constraint (dotted underline)
    span.tabIndex = state.focusable ? -1 : 0; // the first token is in the Tab order
    state.focusable = true;
    frag.append(span);
  }
  state.count = tokens.length;
  // A cell that ended where a sibling goes on diverges after its last token.
  if (diverge && diverge.at === state.position && cell.status !== "running" && fresh) {
    frag.append(marker(diverge));
  }
  el.append(frag);
  // Past the token limit the rest of the text goes on unshaded.
  state.rest = null;
  if (tokens.length >= MAX_CELL_TOKENS) {
    const shown = tokens.map((t) => t[0]).join("");
    const text = cell.text || "";
    if (text.length > shown.length && text.startsWith(shown)) {
      state.rest = document.createTextNode(text.slice(shown.length));
      el.append(state.rest);
    }
  }
}

/**
 * The marker before the token where a cell parts from its sibling.
 * @param {{ at: number, from: string }} diverge
 */
function marker(diverge) {
  const mark = h("span", "lmw-diverge", `▸ diverges here from ${diverge.from}`);
  mark.title = `token ${diverge.at + 1}: the first token that differs from ${diverge.from}`;
  return mark;
}
