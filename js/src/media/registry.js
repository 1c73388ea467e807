// @ts-check
// Media previews by kind: each kind's module registers how the widget shows one of its items;
// a kind without a module (a new kind registered only in Python) gets the generic preview: its
// picture (``src``, our own data URLs only) and its caption, as text.
import { h } from "../dom.js";

/** @typedef {import("../types.js").MediaItem} MediaItem */

/**
 * What a preview may do besides showing the item.
 * @typedef {object} PreviewContext
 * @property {number} index the item's index among the prompt's items of its kind
 * @property {import("../types.js").Region | null} pending a region drawn but not yet run
 * @property {((index: number, item: MediaItem, frame: HTMLElement, event: MouseEvent) => void) | null} onDraw
 *   called on mousedown over an image when regions may be drawn; null otherwise
 * @property {(() => void)[]} cleanups where a preview puts the functions that remove its listeners
 * @property {import("../types.js").Model | null} [model] the widget's model (previews that ask the
 *   kernel for something, e.g. an audio clip's play control)
 */

/** @typedef {(item: MediaItem, context: PreviewContext) => HTMLElement} Preview */

/** @type {Map<string, Preview>} */
const PREVIEWS = new Map();

/**
 * Make ``kind``'s items show as ``preview`` draws them.
 * @param {string} kind
 * @param {Preview} preview
 */
export function registerPreview(kind, preview) {
  PREVIEWS.set(kind, preview);
}

/**
 * Only pictures lmwidgets made itself (JPEG/PNG data URLs) are shown.
 * @param {unknown} src
 * @returns {string}
 */
export function safeSrc(src) {
  return typeof src === "string" && /^data:image\/(jpeg|png);base64,[A-Za-z0-9+/=]+$/.test(src)
    ? src
    : "";
}

/**
 * Any kind's preview: its picture and ``name · caption``.
 * @type {Preview}
 */
export function genericPreview(item) {
  const figure = h("figure", "lmw-figure");
  const src = safeSrc(item.src);
  if (src) {
    const frame = h("div", "lmw-thumb");
    const img = h("img");
    img.src = src;
    img.alt = item.name || item.kind || "media";
    img.draggable = false;
    frame.append(img);
    figure.append(frame);
  }
  const caption = [item.name || item.kind, item.caption].filter(Boolean).join(" · ");
  figure.append(h("figcaption", "", caption));
  figure.dataset.kind = String(item.kind || "");
  return figure;
}

/**
 * One item's preview, drawn by its kind's module (the generic one for other kinds).
 * @param {MediaItem} item
 * @param {PreviewContext} context
 */
export function preview(item, context) {
  const draw = PREVIEWS.get(String(item.kind || "image")) || genericPreview;
  return draw(item, context);
}
