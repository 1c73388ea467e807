// @ts-check
// The live comparison view: a header (title, status, Stop), a progress bar, the image gallery,
// the region bar, a toolbar (how many agree; a dataset's filter; the token legend), the cells and
// a message line. The Python side owns the content; this module renders it as text and sends the
// user's requests back as custom messages (stop, rerun, fork).
import { button, h, listen } from "./dom.js";
import { BlindPanel } from "./blind.js";
import { CellsView } from "./cells.js";
import { FILTERS } from "./filters.js";
import { renderGallery } from "./gallery.js";
import { TokenPopover } from "./popover.js";
import { RegionTool } from "./region.js";
import { dropStore, storeFor } from "./store.js";
import { legend } from "./tokens.js";

/** @typedef {import("./types.js").Model} Model */
/** @typedef {import("./types.js").PromptState} PromptState */
/** @typedef {import("./store.js").CellStore} CellStore */

function skeleton() {
  const root = h("div", "lmw-root lmw-live");
  const header = h("div", "lmw-header");
  const title = h("div", "lmw-title");
  const status = h("span", "lmw-status");
  const runStats = h("span", "lmw-runstats");
  runStats.title = "The whole run: every column together (the columns of a batch advance together)";
  const stop = button("lmw-stop", "Stop", "Stop generating (the text so far is kept)");
  const tokens = button(
    "lmw-tokentoggle",
    "tokens",
    "Show each column's tokens shaded by probability (hover or focus one for its alternatives)",
  );
  tokens.setAttribute("aria-pressed", "false");
  const blind = button(
    "lmw-blindtoggle",
    "blind A/B",
    "Blind pairwise rating: two columns at a time, labels hidden; which is better?",
  );
  blind.setAttribute("aria-pressed", "false");
  header.append(title, runStats, status, blind, tokens, stop);
  const progressBox = h("div", "lmw-progressbox");
  const progress = h("progress", "lmw-progress");
  const progressText = h("span", "lmw-progresstext");
  progressBox.append(progress, progressText);
  const gallery = h("div", "lmw-gallery");
  const regionBar = h("div", "lmw-regionbar");
  const toolbar = h("div", "lmw-toolbar");
  const summary = h("div", "lmw-summary");
  const filterBox = h("label", "lmw-filterbox", "show ");
  const filter = h("select", "lmw-filter");
  for (const [value, text] of FILTERS) {
    const option = h("option", "", text);
    option.value = value;
    filter.append(option);
  }
  filterBox.append(filter);
  const columnsBox = h("label", "lmw-columnsbox", "columns ");
  const columns = h("select", "lmw-columns");
  columns.title = "Which axis forms the columns (the same results, laid out again)";
  columnsBox.append(columns);
  const tokenBar = h("div", "lmw-tokenbar");
  const tokenNote = h("span", "lmw-tokennote");
  const getTokens = button(
    "lmw-gettokens",
    "get them",
    "Re-run this comparison in this view with its recorded seeds and --logprobs 5",
  );
  tokenBar.append(legend(), tokenNote, getTokens);
  toolbar.append(summary, filterBox, columnsBox);
  const body = h("div", "lmw-body");
  const message = h("div", "lmw-message");
  root.append(header, progressBox, gallery, regionBar, toolbar, tokenBar, body, message);
  return {
    blind,
    getTokens,
    runStats,
    tokens,
    tokenBar,
    tokenNote,
    root,
    title,
    status,
    stop,
    progress,
    progressBox,
    progressText,
    gallery,
    regionBar,
    toolbar,
    summary,
    filterBox,
    filter,
    columnsBox,
    columns,
    body,
    message,
  };
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
  const cut = store.cells.filter((c) => c.status === "length").length;
  let text = asked && s === "running" ? "stopping…" : s;
  let key = s;
  if (s === "done" && cut) {
    const total = store.cells.length;
    text = cut === total ? "truncated (max tokens)" : `${cut} of ${total} truncated (max tokens)`;
    key = "length";
  }
  parts.status.textContent = text;
  parts.status.dataset.status = key;
  parts.status.title = cut ? "an answer was cut off by --max-new-tokens" : "";
  parts.runStats.textContent = s === "running" ? "" : model.get("run_stats") || "";
  parts.stop.disabled = s !== "running" || asked;
  parts.stop.style.display = s === "running" ? "" : "none";
}

/**
 * @param {Parts} parts
 * @param {Model} model
 */
function renderProgress(parts, model) {
  const p = model.get("progress") || {};
  const bar = parts.progress;
  parts.progressBox.style.display = p.total ? "" : "none";
  if (!p.total) return;
  bar.max = p.total;
  bar.value = p.done || 0;
  const text = p.text || `${p.done || 0} of ${p.total} batches`;
  bar.title = text;
  parts.progressText.textContent = text;
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
      ["change:rows", () => this.drawCells(null)],
      ["change:axes", () => this.drawCells(null)],
      ["change:row_summaries", () => this.drawCells(null)],
      ["change:column_stats", () => this.drawCells(null)],
      ["change:summary", () => this.drawToolbar()],
      ["change:column_choices", () => this.drawToolbar()],
      ["change:column_axis", () => this.drawToolbar()],
      ["change:row_parts", () => this.drawCells(null)],
      ["change:min_column_width", () => this.drawWidth()],
      ["change:scores", () => this.cells.renderScores(model)],
      ["change:score_intervals", () => this.cells.renderScores(model)],
      ["change:status", () => (this.drawStatus(), this.drawColumnsMenu())],
      ["change:run_stats", () => this.drawStatus()],
      ["change:stop_requested", () => this.drawStatus()],
      ["change:progress", () => renderProgress(this.parts, model)],
      ["change:title", () => this.drawText()],
      ["change:message", () => this.drawText()],
      ["change:media", () => (this.drawGallery(), this.drawCells(null))],
      ["change:can_rerun", () => this.drawGallery()],
      ["change:token_view", () => (this.drawTokens(), this.drawCells(null))],
      ["change:can_fork", () => this.drawTokens()],
      ["change:can_get_tokens", () => this.drawTokens()],
      ["change:message", () => ((this.gettingTokens = false), this.drawTokens())],
      ["change:columns", () => this.endFork()],
      ["change:message", () => this.endFork()],
      ["change:status", () => this.endFork()],
      ["change:can_rate", () => (this.drawCells(null), this.drawBlind())],
      ["change:blind", () => this.drawBlind()],
      ["change:blind_pair", () => this.drawBlind()],
      ["change:status", () => this.drawBlind()],
    ];
    this.blind = new BlindPanel(
      (message) => model.send(message),
      () => this.setBlind(false),
    );
    this.parts.body.before(this.blind.el);
    /** Whether a fork was asked for and the kernel has not answered yet. */
    this.forking = false;
    /** Whether "get them" was clicked and its re-run has not started yet. */
    this.gettingTokens = false;
    this.popover = new TokenPopover(this.parts.root, {
      cell: (index) => this.store.cells[index],
      forkState: () => this.forkState(),
      onFork: (request) => this.fork(request),
    });
    this.popover.attach(this.parts.body);
    for (const [name, fn] of this.events) model.on(name, fn);
    this.unsubscribe = this.store.subscribe((changed) => {
      this.drawCells(changed);
      this.drawStatus();
      this.drawBlind();
    });
    this.unlisteners = [
      listen(this.parts.stop, "click", () => this.store.requestStop()),
      listen(this.parts.tokens, "click", () => {
        this.model.set("token_view", !this.model.get("token_view"));
        this.model.save_changes();
      }),
      listen(this.parts.getTokens, "click", () => {
        this.gettingTokens = true;
        this.model.send({ type: "tokens" });
        this.drawTokens();
      }),
      listen(this.parts.filter, "change", () => {
        this.cells.applyFilter(this.parts.filter.value);
        this.parts.root.dataset.filter = this.parts.filter.value;
      }),
      listen(this.parts.columns, "change", () => {
        this.model.set("column_axis", this.parts.columns.value);
        this.model.save_changes();
      }),
      listen(this.parts.blind, "click", () => this.setBlind(!this.model.get("blind"))),
      listen(this.parts.body, "lmw-rate", (/** @type {CustomEvent} */ event) => {
        const index = Number(/** @type {HTMLElement} */ (event.target).dataset.index);
        if (Number.isInteger(index)) this.model.send({ type: "rate", index, value: event.detail.value });
      }),
    ];
  }

  /** The agreement summary, and the filter (dataset grids only). */
  drawToolbar() {
    const summary = this.model.get("summary") || "";
    const grid = this.model.get("layout") === "grid";
    this.parts.summary.textContent = summary;
    this.parts.filterBox.style.display = grid ? "" : "none";
    // "disagreeing only" where the answers were grouped: not in a probe or pairwise-judged
    // grid (whose columns ask different things), nor before a run ends.
    const grouped = this.store.cells.some((c) => typeof c.group === "number");
    const disagree = /** @type {HTMLOptionElement | null} */ (
      this.parts.filter.querySelector('option[value="disagree"]')
    );
    if (disagree) disagree.hidden = disagree.disabled = !grouped;
    if (!grouped && this.parts.filter.value === "disagree") {
      this.parts.filter.value = "all";
      this.cells.applyFilter("all");
      this.parts.root.dataset.filter = "all";
    }
    const swap = this.drawColumnsMenu();
    this.parts.toolbar.style.display = summary || grid || swap ? "" : "none";
  }

  /** The columns menu: the axes that can form the columns (a matrix of a finished run). */
  drawColumnsMenu() {
    const choices = this.model.get("column_choices") || [];
    const current = this.model.get("column_axis") || "";
    const menu = this.parts.columns;
    const key = choices.join("\u0000");
    if (menu.dataset.choices !== key) {
      menu.replaceChildren(
        ...choices.map((/** @type {string} */ axis) => {
          const option = h("option", "", axis.replace("field:", ""));
          option.value = axis;
          return option;
        }),
      );
      menu.dataset.choices = key;
    }
    menu.value = current;
    menu.disabled = this.model.get("status") === "running";
    const shown = choices.length >= 2;
    this.parts.columnsBox.style.display = shown ? "" : "none";
    return shown;
  }

  /**
   * The tokens toggle, the legend, and, in a view without token data, how to get them: the
   * toggle is this view's own state; "get them" re-runs this comparison with them.
   */
  drawTokens() {
    const on = Boolean(this.model.get("token_view"));
    const has = this.store.cells.some((c) => (c.tokens || []).length > 0);
    const running = this.model.get("status") === "running";
    if (running) this.gettingTokens = false; // the re-run started
    const parts = this.parts;
    parts.tokens.setAttribute("aria-pressed", String(on));
    parts.tokens.classList.toggle("lmw-on", on);
    parts.root.dataset.tokens = on ? (has ? "shown" : "asked") : "";
    parts.tokenBar.style.display = on ? "" : "none";
    /** @type {HTMLElement} */ (parts.tokenBar.firstChild).style.display = has ? "" : "none";
    const canGet = Boolean(this.model.get("can_get_tokens"));
    parts.getTokens.style.display = on && !has && canGet && !running ? "" : "none";
    parts.getTokens.disabled = this.gettingTokens;
    let note = "";
    if (on && !has) {
      const n = this.store.cells.length;
      if (!canGet) note = "No token probabilities here: run the cell with --logprobs 5.";
      else if (running) note = "This run has no token probabilities: once it ends, you can get them.";
      else if (this.gettingTokens) note = "Getting the token probabilities…";
      else
        note = `No token probabilities in this run. Get them: re-run ${n === 1 ? "its column" : `its ${n} columns`} here with the same seeds and --logprobs 5.`;
    } else if (on && this.model.get("can_fork")) {
      note = "Hover or focus a token for its alternatives; click one to fork a column there.";
    } else if (on) note = "Hover or focus a token for its alternatives.";
    parts.tokenNote.textContent = note;
  }

  /** "" when a click on an alternative may fork, else why not. */
  forkState() {
    if (!this.model.get("can_fork")) return "Forking is not available for this run.";
    if (this.model.get("status") === "running") return "Forks can be made once the run ends.";
    if (this.forking) return "A fork is on its way…";
    return "";
  }

  /** @param {import("./types.js").ForkRequest} request */
  fork(request) {
    if (this.forkState()) return;
    this.forking = true;
    this.model.send({ type: "fork", ...request });
    this.drawText();
  }

  endFork() {
    if (!this.forking) return;
    this.forking = false;
    this.drawText();
  }

  /** @param {boolean} on */
  setBlind(on) {
    this.model.set("blind", on);
    this.model.save_changes();
  }

  /** The blind toggle (a finished run of two columns or more) and blind mode's panel. */
  drawBlind() {
    const on = Boolean(this.model.get("blind"));
    const can = Boolean(this.model.get("can_rate")) && this.model.get("status") !== "running";
    this.parts.blind.style.display = can && this.store.cells.length > 1 ? "" : "none";
    this.parts.blind.setAttribute("aria-pressed", String(on));
    this.parts.blind.classList.toggle("lmw-on", on);
    this.parts.root.dataset.blind = on ? "1" : "";
    this.blind.render(on, this.model.get("blind_pair") || {}, this.store.cells);
  }

  drawWidth() {
    const width = Number(this.model.get("min_column_width")) || 260;
    this.parts.root.style.setProperty("--lmw-colmin", `${Math.max(80, width)}px`);
  }

  drawAll() {
    this.drawText();
    this.drawWidth();
    this.drawStatus();
    renderProgress(this.parts, this.model);
    this.drawGallery();
    this.region.renderBar();
    this.drawCells(null);
    this.drawBlind();
  }

  /** @param {number[] | null} changed cell indexes (null: all) */
  drawCells(changed) {
    this.cells.render(this.model, this.store.cells, changed);
    if (changed === null) this.drawToolbar();
    this.drawTokens();
  }

  drawGallery() {
    this.undoGallery();
    const region = this.region;
    this.undoGallery = renderGallery(this.parts.gallery, this.model.get("media") || [], {
      pending: region.pending,
      onDraw: this.model.get("can_rerun") ? region.start.bind(region) : null,
      model: this.model,
    });
  }

  drawStatus() {
    renderStatus(this.parts, this.model, this.store);
    this.region.setRunning(this.model.get("status") === "running");
  }

  drawText() {
    const title = this.model.get("title") || "";
    this.parts.title.textContent = title;
    this.parts.title.title = title; // a narrow view cuts it with an ellipsis: the whole on hover
    const message = this.model.get("message") || "";
    const text = this.forking ? [message, "forking…"].filter(Boolean).join("\n") : message;
    this.parts.message.textContent = text;
    this.parts.message.dataset.forking = this.forking ? "1" : "";
  }

  dispose() {
    for (const fn of this.unlisteners) fn();
    this.unsubscribe();
    this.undoGallery();
    this.region.dispose();
    this.popover.dispose();
    this.blind.dispose();
    this.cells.dispose();
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
