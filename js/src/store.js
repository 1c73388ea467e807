// @ts-check
// The cells of one widget model: the synced `columns` trait plus the kernel's streamed updates.
//
// While generating, the kernel does not re-send the whole `columns` list: each push is one
// custom message {type: "cells", cells: [{index, v, ...changed fields}]} holding only the cells
// that changed (see lmwidgets/notebook/widgets/prompt_view.py). One store per model applies
// them, so every view of the model (a second view, a view rendered later) shows the same state.
// The store holds no DOM: views subscribe to it.

/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").CellUpdate} CellUpdate */
/** @typedef {import("./types.js").Model} Model */
/** @typedef {(changed: number[] | null) => void} Listener  null: everything may have changed */

/** The cell fields an update may set (anything else in a message is ignored). */
const FIELDS = /** @type {const} */ ([
  "label",
  "text",
  "answer",
  "chip",
  "answerless",
  "status",
  "stats",
  "note",
  "row",
  "col",
  "row_label",
  "boxes",
  "group",
  "correct",
  "score",
  "compared",
  "verdict",
  "expected",
  "prompt",
  "settings",
  "tokens",
  "diverge",
  "confidence",
  "confidence_text",
  "rating",
]);

/**
 * Apply a "cells" message's updates to ``cells`` in place; returns the indexes that changed.
 *
 * ``append`` extends the text (and ``tokens_append`` the token data, in place) only when the
 * cell is at version ``base`` (it saw every earlier update); otherwise they wait for the next
 * full copy (a checkpoint or the final state), and the cell keeps its old version so later
 * appends wait too.
 * @param {Cell[]} cells
 * @param {unknown} updates
 * @returns {number[]}
 */
export function applyUpdates(cells, updates) {
  /** @type {number[]} */
  const changed = [];
  if (!Array.isArray(updates)) return changed;
  for (const update of /** @type {CellUpdate[]} */ (updates)) {
    const cell = update && Number.isInteger(update.index) ? cells[update.index] : undefined;
    if (!cell) continue;
    const grown = Array.isArray(update.tokens_append) ? update.tokens_append : null;
    const appending = typeof update.append === "string" || grown !== null;
    const inSync = !appending || (cell.v || 0) === update.base;
    if (inSync && typeof update.append === "string") cell.text = (cell.text || "") + update.append;
    if (inSync && grown) {
      if (!Array.isArray(cell.tokens)) cell.tokens = [];
      for (const entry of grown) cell.tokens.push(entry);
    }
    for (const key of FIELDS) {
      if (key in update) /** @type {Record<string, unknown>} */ (cell)[key] = update[key];
    }
    if (inSync && typeof update.v === "number") cell.v = update.v;
    changed.push(update.index);
  }
  return changed;
}

/** The streamed state of one model, shared by its views. */
export class CellStore {
  /** @param {Model} model */
  constructor(model) {
    this.model = model;
    /** @type {Cell[]} */
    this.cells = [];
    /** Whether Stop was clicked in one of this model's views (until the status changes). */
    this.stopping = false;
    /** @type {Set<Listener>} */
    this.listeners = new Set();
    this.onColumns = () => this.reset();
    this.onStatus = () => {
      this.stopping = false;
    };
    /** @param {unknown} msg */
    this.onMessage = (msg) => this.receive(msg);
    model.on("change:columns", this.onColumns);
    model.on("change:status", this.onStatus);
    model.on("msg:custom", this.onMessage);
    this.reset();
  }

  /** Start over from the synced `columns` trait (a full copy from the kernel). */
  reset() {
    // Token data grows in place (tokens_append): copy it, never the synced trait's own list.
    this.cells = (this.model.get("columns") || []).map((cell) => ({
      ...cell,
      ...(Array.isArray(cell.tokens) ? { tokens: [...cell.tokens] } : {}),
    }));
    this.notify(null);
  }

  /** @param {unknown} msg a custom message from the kernel */
  receive(msg) {
    const m = /** @type {{type?: unknown, cells?: unknown}} */ (msg);
    if (!m || m.type !== "cells") return;
    const changed = applyUpdates(this.cells, m.cells);
    if (changed.length) this.notify(changed);
  }

  /** Ask the kernel to stop this run (once); every view shows "stopping…". */
  requestStop() {
    if (this.stopping) return;
    this.stopping = true;
    this.model.send({ type: "stop", run: this.model.get("run") });
    this.notify(null);
  }

  /**
   * @param {Listener} listener
   * @returns {() => void} unsubscribe
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {number[] | null} changed */
  notify(changed) {
    for (const listener of [...this.listeners]) listener(changed);
  }

  dispose() {
    this.model.off("change:columns", this.onColumns);
    this.model.off("change:status", this.onStatus);
    this.model.off("msg:custom", this.onMessage);
    this.listeners.clear();
  }
}

// anywidget hands every view (and initialize) its own proxy of the model, so the store is found
// by the widget's `uid` trait, not by the model object it was given.
/** @type {Map<string, CellStore>} */
const stores = new Map();
/** @type {WeakMap<Model, CellStore>} */
const unnamed = new WeakMap();

/**
 * The model's store, made on first use (anywidget's initialize, or the first render).
 * @param {Model} model
 */
export function storeFor(model) {
  const uid = model.get("uid");
  let store = uid ? stores.get(uid) : unnamed.get(model);
  if (!store) {
    store = new CellStore(model);
    if (uid) stores.set(uid, store);
    else unnamed.set(model, store);
  }
  return store;
}

/**
 * Forget the model's store (anywidget calls initialize's cleanup when the model goes away).
 * @param {Model} model
 */
export function dropStore(model) {
  const uid = model.get("uid");
  const store = uid ? stores.get(uid) : unnamed.get(model);
  store?.dispose();
  if (uid) stores.delete(uid);
  else unnamed.delete(model);
}
