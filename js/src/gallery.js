// @ts-check
// The prompt's images as thumbnails above the columns, with the region each was asked about.
import { h, listen } from "./dom.js";
import { audioFigure } from "./audio.js";
import { overlay, thumbnail } from "./images.js";

/** @typedef {import("./types.js").Region} Region */
/** @typedef {import("./types.js").Thumb} Thumb */

/**
 * @typedef {object} GalleryOptions
 * @property {Region | null} pending a region drawn but not yet run (shown as a draft)
 * @property {((index: number, image: Thumb, frame: HTMLElement, event: MouseEvent) => void) | null} onDraw
 *   called on mousedown over a thumbnail when regions may be drawn; null otherwise
 * @property {import("./types.js").Model | null} [model] the widget's model: audio clips' play
 *   controls ask the kernel for their audio through it
 */

/**
 * Fill ``gallery`` with one captioned thumbnail per image.
 * @param {HTMLElement} gallery
 * @param {Thumb[]} images
 * @param {GalleryOptions} options
 * @returns {() => void} removes the listeners it added
 */
export function renderGallery(gallery, images, { pending, onDraw, model }) {
  /** @type {(() => void)[]} */
  const cleanups = [];
  gallery.replaceChildren();
  gallery.style.display = images.length ? "" : "none";
  images.forEach((image, index) => {
    if (/** @type {{kind?: string}} */ (image).kind === "audio") {
      const clip = audioFigure(/** @type {any} */ (image), index, model || null);
      gallery.append(clip.node);
      cleanups.push(clip.dispose);
      return;
    }
    const item = h("figure", "lmw-figure");
    const frame = thumbnail(image);
    if (image.region) frame.append(overlay("lmw-region", image, image.region, ""));
    if (pending && pending.image === index) frame.append(overlay("lmw-draft", image, pending.box, ""));
    const caption = `${image.name || "image"} · ${image.width}×${image.height}`;
    item.append(frame, h("figcaption", "", caption));
    gallery.append(item);
    if (!onDraw) return;
    frame.classList.add("lmw-drawable");
    frame.title = "Drag to mark a region, then re-run with it";
    /** @param {MouseEvent} event */
    const down = (event) => onDraw(index, image, frame, event);
    cleanups.push(listen(frame, "mousedown", down));
  });
  return () => {
    for (const fn of cleanups) fn();
  };
}
