// @ts-check
// The image kind's preview: a thumbnail with the region it was asked about (and a draft region
// being drawn), and the rectangles (regions, boxes) drawn over thumbnails elsewhere.
import { h, listen } from "../dom.js";
import { registerPreview, safeSrc } from "./registry.js";

export { safeSrc };

/** @typedef {import("../types.js").Thumb} Thumb */
/** @typedef {import("../types.js").MediaItem} MediaItem */

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

/**
 * The widget's image preview: captioned thumbnail, region, draft region, drawing.
 * @param {MediaItem} item
 * @param {import("./registry.js").PreviewContext} context
 */
function imagePreview(item, { index, pending, onDraw, cleanups }) {
  const image = /** @type {Thumb} */ (item);
  const figure = h("figure", "lmw-figure");
  figure.dataset.kind = "image";
  const frame = thumbnail(image);
  if (image.region) frame.append(overlay("lmw-region", image, image.region, ""));
  if (pending && pending.image === index) frame.append(overlay("lmw-draft", image, pending.box, ""));
  figure.append(frame, h("figcaption", "", `${image.name || "image"} · ${image.width}×${image.height}`));
  if (onDraw) {
    frame.classList.add("lmw-drawable");
    frame.title = "Drag to mark a region, then re-run with it";
    /** @param {MouseEvent} event */
    const down = (event) => onDraw(index, item, frame, event);
    cleanups.push(listen(frame, "mousedown", down));
  }
  return figure;
}

registerPreview("image", imagePreview);
