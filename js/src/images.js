// @ts-check
// Thumbnails of the prompt's images and rectangles (regions, boxes) drawn over them.
import { h } from "./dom.js";

/** @typedef {import("./types.js").Thumb} Thumb */

/**
 * Only thumbnails lmwidgets made itself (JPEG/PNG data URLs) are shown.
 * @param {unknown} src
 * @returns {string}
 */
export function safeSrc(src) {
  return typeof src === "string" && /^data:image\/(jpeg|png);base64,[A-Za-z0-9+/=]+$/.test(src)
    ? src
    : "";
}

/**
 * ``value`` as a percentage of ``total``, clamped to [0, total].
 * @param {unknown} value
 * @param {number} total
 */
function pct(value, total) {
  return `${(100 * Math.min(Math.max(Number(value) || 0, 0), total)) / (total || 1)}%`;
}

/**
 * A rectangle over a thumbnail, placed in percent of the original image's size.
 * @param {string} className
 * @param {Thumb} image
 * @param {number[]} box x1, y1, x2, y2 in pixels of the original image
 * @param {string} [label]
 */
export function overlay(className, image, box, label) {
  const rect = h("div", className);
  rect.style.left = pct(box[0], image.width);
  rect.style.top = pct(box[1], image.height);
  rect.style.width = pct(box[2] - box[0], image.width);
  rect.style.height = pct(box[3] - box[1], image.height);
  if (label) rect.append(h("span", "lmw-boxlabel", label));
  return rect;
}

/**
 * A framed thumbnail (the frame holds the overlays).
 * @param {Thumb} image
 * @param {string} [className]
 */
export function thumbnail(image, className) {
  const frame = h("div", className || "lmw-thumb");
  const img = h("img");
  img.src = safeSrc(image.src);
  img.alt = image.name || "image";
  img.draggable = false;
  frame.append(img);
  return frame;
}

/**
 * Where a mouse event falls on a thumbnail, in whole pixels of the original image.
 * @param {HTMLElement} frame
 * @param {Thumb} image
 * @param {MouseEvent} event
 * @returns {[number, number]}
 */
export function imagePoint(frame, image, event) {
  const r = frame.getBoundingClientRect();
  const fx = Math.min(Math.max((event.clientX - r.left) / (r.width || 1), 0), 1);
  const fy = Math.min(Math.max((event.clientY - r.top) / (r.height || 1), 0), 1);
  return [Math.round(fx * image.width), Math.round(fy * image.height)];
}
