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

/**
 * anywidget's render: draws the view into ``el`` and returns the cleanup that removes it.
 * @param {import("@anywidget/types").RenderProps<PromptState>} props
 */
export function render({ model, el }) {
  const store = storeFor(model);
  const parts = skeleton();
  el.append(parts.root);
  const cells = new CellsView(parts.body);
  let undoGallery = () => {};
  const region = new RegionTool(model, parts.regionBar, drawGallery);

  function drawGallery() {
    undoGallery();
    const onDraw = model.get("can_rerun") ? region.start.bind(region) : null;
    undoGallery = renderGallery(parts.gallery, model.get("images") || [], {
      pending: region.pending,
      onDraw,
    });
  }
  const drawCells = () => cells.render(model, store.cells, null);
  const drawStatus = () => {
    renderStatus(parts, model, store);
    region.setRunning(model.get("status") === "running");
  };
  const drawText = () => {
    parts.title.textContent = model.get("title") || "";
    parts.message.textContent = model.get("message") || "";
  };
  /** @type {[string, () => void][]} */
  const events = [
    ["change:layout", drawCells],
    ["change:labels", drawCells],
    ["change:scores", () => cells.renderScores(model)],
    ["change:status", drawStatus],
    ["change:stop_requested", drawStatus],
    ["change:progress", () => renderProgress(parts, model)],
    ["change:title", drawText],
    ["change:message", drawText],
    ["change:images", () => (drawGallery(), drawCells())],
    ["change:can_rerun", drawGallery],
  ];
  for (const [name, fn] of events) model.on(name, fn);
  const unsubscribe = store.subscribe((changed) => {
    cells.render(model, store.cells, changed);
    if (changed === null) drawStatus();
  });
  const unlisten = listen(parts.stop, "click", () => store.requestStop());

  drawText();
  drawStatus();
  renderProgress(parts, model);
  drawGallery();
  region.renderBar();
  drawCells();

  return () => {
    unlisten();
    unsubscribe();
    undoGallery();
    region.dispose();
    for (const [name, fn] of events) model.off(name, fn);
    parts.root.remove();
  };
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
