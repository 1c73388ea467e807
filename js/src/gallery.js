// @ts-check
// The prompt's media above the columns, each item as its kind's preview module draws it.
import { preview } from "./media/registry.js";
import "./media/image.js";
import "./media/audio.js";

/** @typedef {import("./types.js").Region} Region */
/** @typedef {import("./types.js").MediaItem} MediaItem */

/**
 * @typedef {object} GalleryOptions
 * @property {Region | null} pending a region drawn but not yet run (shown as a draft)
 * @property {((index: number, item: MediaItem, frame: HTMLElement, event: MouseEvent) => void) | null} onDraw
 *   called on mousedown over an image when regions may be drawn; null otherwise
 * @property {import("./types.js").Model | null} [model] the widget's model (audio play controls)
 */

/**
 * Fill ``gallery`` with one preview per media item.
 * @param {HTMLElement} gallery
 * @param {MediaItem[]} media
 * @param {GalleryOptions} options
 * @returns {() => void} removes the listeners it added
 */
export function renderGallery(gallery, media, { pending, onDraw, model }) {
  /** @type {(() => void)[]} */
  const cleanups = [];
  gallery.replaceChildren();
  gallery.style.display = media.length ? "" : "none";
  /** @type {Map<string, number>} */
  const seen = new Map();
  for (const item of media) {
    const kind = String(item.kind || "image");
    const index = seen.get(kind) || 0;
    seen.set(kind, index + 1);
    gallery.append(preview(item, { index, pending, onDraw, cleanups, model: model || null }));
  }
  return () => {
    for (const fn of cleanups) fn();
  };
}
