// @ts-check
// Drawing a region on a thumbnail with the mouse, and the bar that re-runs the prompt with it:
// the request goes to the kernel as a custom message {type: "rerun", image, box, mode}.
import { button, h, listen } from "./dom.js";
import { imagePoint, overlay } from "./media/image.js";

/** @typedef {import("./types.js").Model} Model */
/** @typedef {import("./types.js").Region} Region */
/** @typedef {import("./types.js").Thumb} Thumb */

/**
 * @typedef {object} Drag
 * @property {number} index
 * @property {Thumb} image
 * @property {HTMLElement} frame
 * @property {[number, number]} start
 * @property {HTMLElement} rect
 * @property {number[]} [box]
 */

const MODES = [
  ["box", "draw a box on the image"],
  ["crop", "crop to the region"],
];

/**
 * The flag to paste into the cell for the same region (``N:`` names the N-th image).
 * @param {Region} region
 */
export function regionFlag(region) {
  const [x1, y1, x2, y2] = region.box;
  return `--region ${region.image ? `${region.image + 1}:` : ""}${x1},${y1},${x2},${y2}`;
}

export class RegionTool {
  /**
   * @param {Model} model
   * @param {HTMLElement} bar where the pending region's flag and buttons go
   * @param {() => void} redraw re-draws the gallery (to show or clear the draft)
   */
  constructor(model, bar, redraw) {
    this.model = model;
    this.bar = bar;
    this.redraw = redraw;
    /** @type {Region | null} */
    this.pending = null;
    /** @type {Region | null} the region of the last re-run (its flag stays to be pasted) */
    this.last = null;
    /** @type {Drag | null} */
    this.drag = null;
    this.cleanups = [
      listen(window, "mousemove", (/** @type {MouseEvent} */ e) => this.move(e)),
      listen(window, "mouseup", () => this.end()),
    ];
  }

  /**
   * Mousedown on thumbnail ``index``: start a draft rectangle there.
   * @param {number} index
   * @param {import("./types.js").MediaItem} item
   * @param {HTMLElement} frame
   * @param {MouseEvent} event
   */
  start(index, item, frame, event) {
    const image = /** @type {Thumb} */ (item);
    event.preventDefault();
    const start = imagePoint(frame, image, event);
    const rect = overlay("lmw-draft", image, [...start, ...start], "");
    frame.querySelectorAll(".lmw-draft").forEach((n) => n.remove());
    frame.append(rect);
    this.drag = { index, image, frame, start, rect };
  }

  /** @param {MouseEvent} event */
  move(event) {
    const drag = this.drag;
    if (!drag) return;
    const [x, y] = imagePoint(drag.frame, drag.image, event);
    const [sx, sy] = drag.start;
    const box = [Math.min(sx, x), Math.min(sy, y), Math.max(sx, x), Math.max(sy, y)];
    const fresh = overlay("lmw-draft", drag.image, box, "");
    drag.rect.replaceWith(fresh);
    drag.rect = fresh;
    drag.box = box;
  }

  end() {
    const drag = this.drag;
    if (!drag) return;
    this.drag = null;
    const box = drag.box;
    if (box && box[2] - box[0] >= 2 && box[3] - box[1] >= 2) this.pending = { image: drag.index, box };
    this.redraw();
    this.renderBar();
  }

  /** The pending region's flag, the mode, "Re-run with region" and "Clear"; after a re-run,
   * the flag it ran with (to paste into the cell) until another region is drawn or cleared. */
  renderBar() {
    this.bar.replaceChildren();
    const pending = this.pending;
    const last = this.last;
    this.bar.style.display = pending || last ? "" : "none";
    if (!pending && last) {
      const clear = button("lmw-clear", "Clear");
      clear.addEventListener("click", () => {
        this.last = null;
        this.renderBar();
      });
      this.bar.append(
        h("span", "lmw-regioncaption", `Re-ran with region (${last.mode || "box"}); paste into the cell to keep it:`),
        h("code", "lmw-regionflag", regionFlag(last) + (last.mode === "crop" ? " --region-mode crop" : "")),
        clear,
      );
      return;
    }
    if (!pending) return;
    const mode = h("select", "lmw-regionmode");
    for (const [value, text] of MODES) {
      const option = h("option", "", text);
      option.value = value;
      mode.append(option);
    }
    const rerun = button("lmw-rerun", "Re-run with region");
    rerun.disabled = this.model.get("status") === "running";
    const clear = button("lmw-clear", "Clear");
    rerun.addEventListener("click", () => {
      this.model.send({ type: "rerun", image: pending.image, box: pending.box, mode: mode.value });
      this.last = { ...pending, mode: mode.value };
      this.pending = null;
      this.renderBar();
    });
    clear.addEventListener("click", () => {
      this.pending = null;
      this.redraw();
      this.renderBar();
    });
    this.bar.append(h("code", "lmw-regionflag", regionFlag(pending)), mode, rerun, clear);
  }

  /** @param {boolean} running a run in progress cannot be re-run */
  setRunning(running) {
    const rerun = this.bar.querySelector(".lmw-rerun");
    if (rerun) /** @type {HTMLButtonElement} */ (rerun).disabled = running;
  }

  dispose() {
    for (const fn of this.cleanups.splice(0)) fn();
    this.bar.replaceChildren();
  }
}
