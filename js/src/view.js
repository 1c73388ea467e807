// @ts-check
// The live comparison view: a header (title, status, Stop), a progress bar, the image gallery,
// the region bar, the cells and a message line. The Python side owns the content; this module
// renders it as text and sends the user's requests back as custom messages.
import { button, h, listen } from "./dom.js";
import { CellsView } from "./cells.js";
import { renderGallery } from "./gallery.js";
import { RegionTool } from "./region.js";
import { dropStore, storeFor } from "./store.js";

/** @typedef {import("./types.js").Model} Model */
/** @typedef {import("./types.js").PromptState} PromptState */
/** @typedef {import("./store.js").CellStore} CellStore */

function skeleton() {
  const root = h("div", "lmw-root lmw-live");
  const header = h("div", "lmw-header");
  const title = h("div", "lmw-title");
  const status = h("span", "lmw-status");
  const stop = button("lmw-stop", "Stop", "Stop generating (the text so far is kept)");
  header.append(title, status, stop);
  const progress = h("progress", "lmw-progress");
  const gallery = h("div", "lmw-gallery");
  const regionBar = h("div", "lmw-regionbar");
  const body = h("div", "lmw-body");
  const message = h("div", "lmw-message");
  root.append(header, progress, gallery, regionBar, body, message);
  return { root, title, status, stop, progress, gallery, regionBar, body, message };
}

/** @typedef {ReturnType<typeof skeleton>} Parts */

/**
 * @param {Parts} parts
 * @param {Model} model
 * @param {CellStore} store
 */
function renderStatus(parts, model, store) {
  const s = model.get("status") || "";
  const asked = store.stopping || model.get("stop_requested");
  parts.status.textContent = asked && s === "running" ? "stopping…" : s;
  parts.status.dataset.status = s;
  parts.stop.disabled = s !== "running" || asked;
}

/**
 * @param {Parts} parts
 * @param {Model} model
 */
function renderProgress(parts, model) {
  const p = model.get("progress") || {};
  const bar = parts.progress;
  bar.style.display = p.total ? "" : "none";
  if (!p.total) return;
  bar.max = p.total;
  bar.value = p.done || 0;
  bar.title = `${p.done || 0} of ${p.total} batches`;
}

/** One rendered view: draws the model's state and keeps it drawn until disposed. */
class View {
  /**
   * @param {Model} model
   * @param {HTMLElement} el
   */
  constructor(model, el) {
    this.model = model;
    this.store = storeFor(model);
    this.parts = skeleton();
    el.append(this.parts.root);
    this.cells = new CellsView(this.parts.body);
    this.region = new RegionTool(model, this.parts.regionBar, () => this.drawGallery());
    this.undoGallery = () => {};
    /** @type {[string, () => void][]} */
    this.events = [
      ["change:layout", () => this.drawCells(null)],
      ["change:labels", () => this.drawCells(null)],
      ["change:scores", () => this.cells.renderScores(model)],
      ["change:status", () => this.drawStatus()],
      ["change:stop_requested", () => this.drawStatus()],
      ["change:progress", () => renderProgress(this.parts, model)],
      ["change:title", () => this.drawText()],
      ["change:message", () => this.drawText()],
      ["change:images", () => (this.drawGallery(), this.drawCells(null))],
      ["change:can_rerun", () => this.drawGallery()],
    ];
    for (const [name, fn] of this.events) model.on(name, fn);
    this.unsubscribe = this.store.subscribe((changed) => {
      this.drawCells(changed);
      if (changed === null) this.drawStatus();
    });
    this.unlisten = listen(this.parts.stop, "click", () => this.store.requestStop());
  }

  drawAll() {
    this.drawText();
    this.drawStatus();
    renderProgress(this.parts, this.model);
    this.drawGallery();
    this.region.renderBar();
    this.drawCells(null);
  }

  /** @param {number[] | null} changed cell indexes (null: all) */
  drawCells(changed) {
    this.cells.render(this.model, this.store.cells, changed);
  }

  drawGallery() {
    this.undoGallery();
    const region = this.region;
    this.undoGallery = renderGallery(this.parts.gallery, this.model.get("images") || [], {
      pending: region.pending,
      onDraw: this.model.get("can_rerun") ? region.start.bind(region) : null,
    });
  }

  drawStatus() {
    renderStatus(this.parts, this.model, this.store);
    this.region.setRunning(this.model.get("status") === "running");
  }

  drawText() {
    this.parts.title.textContent = this.model.get("title") || "";
    this.parts.message.textContent = this.model.get("message") || "";
  }

  dispose() {
    this.unlisten();
    this.unsubscribe();
    this.undoGallery();
    this.region.dispose();
    for (const [name, fn] of this.events) this.model.off(name, fn);
    this.parts.root.remove();
  }
}

/**
 * anywidget's render: draws the view into ``el`` and returns the cleanup that removes it
 * (its listeners on the model, the window and the store included).
 * @param {import("@anywidget/types").RenderProps<PromptState>} props
 */
export function render({ model, el }) {
  const view = new View(model, el);
  view.drawAll();
  return () => view.dispose();
}

/**
 * anywidget's initialize (once per model, before any view): the model's cell store starts
 * listening here, so views rendered later still see every streamed update.
 * @param {import("@anywidget/types").InitializeProps<PromptState>} props
 */
export function initialize({ model }) {
  storeFor(model);
  return () => dropStore(model);
}
