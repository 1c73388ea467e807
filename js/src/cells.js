// @ts-check
// The body of the view: a table of cells with column headers (and row headers for a matrix or
// a dataset grid). Each cell shows its answer chip (when the answer is a part of its text) or
// its verdict (dataset), its streamed text, a status badge (how it ended, once), stats, a note, the boxes its answer named, Expand / Copy buttons, a
// "diff with…" select and its exact prompt and settings (collapsed). The text is plain, or its
// tokens shaded by probability (token view: tokens.js), or a word diff with another cell
// (diff.js). All of it is set as text.
import { button, h, listen } from "./dom.js";
import { copyText } from "./clipboard.js";
import { diffCounts, wordDiff } from "./diff.js";
import { renderTokens, tokenState } from "./tokens.js";
import { agreeMarks, cellShown, rowShown } from "./filters.js";
import { overlay, thumbnail } from "./media/image.js";
import { preview } from "./media/registry.js";
import { fillRating, ratingBar } from "./ratings.js";
import { fillJudge, judgeView } from "./judge.js";
import { fillChoices } from "./choices.js";

/** @typedef {import("./types.js").Box} Box */
/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").Model} Model */
/** @typedef {import("./types.js").Thumb} Thumb */

/** Pixels from the bottom that still count as "at the end" (the text follows new tokens). */
const NEAR_END = 24;

/**
 * @typedef {object} CellView
 * @property {HTMLDivElement} col
 * @property {HTMLDivElement} top
 * @property {HTMLSpanElement} answer
 * @property {HTMLSpanElement} conf the answer's confidence ("p=0.82", "vote 3/5")
 * @property {HTMLSpanElement} verdict
 * @property {HTMLSpanElement} badge
 * @property {HTMLSpanElement} cached "cached" when the text came from the response cache
 * @property {HTMLSpanElement} probe a probe column's verdict: held, leaked or followed
 * @property {HTMLSpanElement} structured "✓ valid" / "✗ invalid" for a structured answer
 * @property {HTMLSpanElement} badges registered axis kinds' generic badges (one chip each)
 * @property {string} badgesKey what the badges were last drawn from
 * @property {import("./ratings.js").RatingBar} rating your thumbs (ratings.js)
 * @property {HTMLDetailsElement} parsed the parsed JSON, folded
 * @property {HTMLPreElement} parsedText
 * @property {import("./judge.js").JudgeView} judge the judge's verdict chip and reasoning
 * @property {HTMLDivElement} boxes
 * @property {HTMLDivElement} choices given choices' probabilities as bars (--choices)
 * @property {HTMLPreElement} text
 * @property {HTMLDivElement} info where its tokens diverge; what the diff shows
 * @property {HTMLSelectElement} diffWith the "diff with…" select (values: cell indexes)
 * @property {HTMLDivElement} stats
 * @property {HTMLDivElement} note
 * @property {HTMLButtonElement} expand shown only where the text is cut (see fitExpand)
 * @property {boolean} choice a choice-likelihood cell: its text is the pick, nothing to expand
 * @property {HTMLButtonElement} copy
 * @property {HTMLDetailsElement} details
 * @property {HTMLDivElement} settings
 * @property {HTMLPreElement} prompt
 * @property {string} boxKey what the boxes were last drawn from
 * @property {boolean} follow whether the text follows new tokens (the user has not scrolled up)
 * @property {string} status the status it was last drawn with
 * @property {string} fullText what Copy copies
 * @property {number} copyTimer
 * @property {number} index the index of the cell it shows (in the store's cells)
 * @property {string} mode how the text is drawn: text, tokens or diff
 * @property {import("./tokens.js").TokenState} tokens
 * @property {string} diffKey what the diff was last drawn from
 * @property {string} optionsKey what the diff select's options were made from
 */

/**
 * How a cell's text is drawn: its tokens (token view), or a word diff with ``diffWith``.
 * @typedef {{ tokenView: boolean, diffWith: Cell | null, diffLabel: string }} TextMode
 */

/** What a cell's badge says for each status ("eos": finished normally, no badge). */
const STATUS_TEXT = /** @type {Record<string, string>} */ ({
  running: "running",
  waiting: "waiting",
  length: "truncated (max tokens)",
  stopped: "stopped",
  error: "error",
});

/** @param {string | undefined} status */
const finished = (status) => status !== "running" && status !== "waiting";

/** @param {HTMLElement} el */
const atEnd = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_END;

/**
 * @param {number} row
 * @param {number} col
 * @returns {CellView}
 */
function cellView(row, col) {
  const el = h("div", "lmw-col");
  el.dataset.row = String(row);
  el.dataset.col = String(col);
  const top = h("div", "lmw-celltop");
  const answer = h("span", "lmw-answer");
  const conf = h("span", "lmw-conf");
  const verdict = h("span", "lmw-verdict");
  const badge = h("span", "lmw-badge");
  const cached = h("span", "lmw-cached");
  cached.title = "Answered from the response cache (%%prompt --no-cache generates it again)";
  const probe = h("span", "lmw-probe");
  top.append(answer, conf, verdict, badge, cached, probe);
  const structured = h("span", "lmw-structured");
  top.append(answer, conf, verdict, badge, cached, structured);
  const badges = h("span", "lmw-axis-badges");
  top.append(badges);
  const rating = ratingBar(el);
  top.append(rating.el);
  const boxes = h("div", "lmw-colboxes");
  const choices = h("div", "lmw-choices");
  const info = h("div", "lmw-cellinfo");
  const text = h("pre", "lmw-text");
  const stats = h("div", "lmw-stats");
  const note = h("div", "lmw-note");
  const tools = h("div", "lmw-tools");
  const expand = button("lmw-expand", "Expand", "Show the whole text (click again to shrink)");
  expand.style.display = "none"; // until its text is measured as cut (CellsView's observer)
  const copy = button("lmw-copy", "Copy", "Copy this column's full text");
  const diffWith = h("select", "lmw-diffwith");
  diffWith.title = "Show this column's text as a word diff with another column";
  diffWith.setAttribute("aria-label", "diff with another column");
  const details = h("details", "lmw-prompt");
  details.append(h("summary", "", "prompt & settings"));
  const settings = h("div", "lmw-settings");
  const prompt = h("pre", "lmw-prompttext");
  details.append(settings, prompt);
  tools.append(expand, copy, diffWith);
  const parsed = h("details", "lmw-parsed");
  parsed.append(h("summary", "", "parsed JSON"));
  const parsedText = h("pre", "lmw-parsedtext");
  parsed.append(parsedText);
  const judge = judgeView();
  top.append(judge.chip);
  el.append(top, boxes, choices, info, text, parsed, judge.details, stats, note, tools, details);
  /** @type {CellView} */
  const v = {
    col: el,
    top,
    answer,
    conf,
    verdict,
    badge,
    cached,
    probe,
    structured,
    badges,
    badgesKey: "",
    rating,
    parsed,
    parsedText,
    judge,
    boxes,
    choices,
    text,
    info,
    diffWith,
    stats,
    note,
    expand,
    choice: false,
    copy,
    details,
    settings,
    prompt,
    boxKey: "",
    follow: true,
    status: "",
    fullText: "",
    copyTimer: 0,
    index: -1,
    mode: "text",
    tokens: tokenState(),
    diffKey: "",
    optionsKey: "",
  };
  // The elements (and so these listeners) live as long as the cell view.
  listen(text, "scroll", () => {
    v.follow = atEnd(text);
  });
  listen(expand, "click", () => {
    const on = el.classList.toggle("lmw-expanded");
    expand.textContent = on ? "Collapse" : "Expand";
    expand.setAttribute("aria-pressed", String(on));
  });
  listen(copy, "click", async () => {
    const ok = await copyText(v.fullText);
    el.dataset.copied = ok ? "1" : "0";
    copy.textContent = ok ? "copied" : "copy failed";
    window.clearTimeout(v.copyTimer);
    v.copyTimer = window.setTimeout(() => (copy.textContent = "Copy"), 1500);
  });
  return v;
}

/**
 * Show the Expand button only where it does something: the text is cut (taller than its box:
 * a long answer, not a one-line one), or it is expanded (to collapse it again); never on a
 * choice-likelihood cell. Measured by CellsView's ResizeObserver whenever the text's box
 * changes size: it grows while streaming, the window or the column is resized, a cell
 * expands or collapses.
 * @param {CellView} v
 */
function fitExpand(v) {
  const expanded = v.col.classList.contains("lmw-expanded");
  const cut = v.text.scrollHeight > v.text.clientHeight + 1;
  const show = !v.choice && (expanded || cut);
  v.col.dataset.cut = cut ? "1" : "";
  if (v.expand.style.display !== (show ? "" : "none")) v.expand.style.display = show ? "" : "none";
}

/** @param {Box} b */
function boxText(b) {
  const r = Math.round;
  return `${b.label || "box"}: (${r(b.x1)}, ${r(b.y1)}) – (${r(b.x2)}, ${r(b.y2)})`;
}

/**
 * A dataset row's own media (its first cell carries them), as each kind previews them.
 * @param {HTMLElement} box
 * @param {Cell | undefined} cell
 */
function fillRowMedia(box, cell) {
  const media = cell?.row_media || [];
  const key = media.map((m) => `${m.kind}:${m.name}:${(m.src || "").length}`).join("|");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  /** @type {Map<string, number>} */
  const seen = new Map();
  box.replaceChildren(
    ...media.map((item) => {
      const kind = String(item.kind || "image");
      const index = seen.get(kind) || 0;
      seen.set(kind, index + 1);
      return preview(item, { index, pending: null, onDraw: null, cleanups: [] });
    }),
  );
}

/**
 * The cell's boxes drawn over a thumbnail of the image they refer to, plus a text list.
 * @param {CellView} v
 * @param {Cell} data
 * @param {Thumb[]} images
 */
function fillBoxes(v, data, images) {
  const boxes = data.boxes || [];
  const key = JSON.stringify(boxes) + images.length;
  if (key === v.boxKey) return;
  v.boxKey = key;
  v.boxes.replaceChildren();
  if (!boxes.length) return;
  /** @type {Map<number, Box[]>} */
  const byImage = new Map();
  for (const b of boxes) {
    const index = b.image || 0;
    if (!images[index]) continue;
    byImage.set(index, [...(byImage.get(index) || []), b]);
  }
  for (const [index, list] of byImage) {
    const image = images[index];
    const frame = thumbnail(image, "lmw-thumb lmw-boxed");
    for (const b of list) frame.append(overlay("lmw-box", image, [b.x1, b.y1, b.x2, b.y2], b.label));
    v.boxes.append(frame);
  }
  v.boxes.append(h("div", "lmw-boxlist", boxes.map(boxText).join(" · ")));
}

/**
 * Set ``el``'s text, or hide it when there is none.
 * @param {HTMLElement} el
 * @param {string} text
 */
function showText(el, text) {
  if (el.textContent !== text) el.textContent = text;
  el.style.display = text ? "" : "none";
}

/**
 * The answer chip (when the answer is a part of the text, or no answer was found), its
 * confidence, and for a scored cell the verdict instead of the chip: ✓ / ✗ and how it was
 * judged ("contains Paris", "got 7 · expected 6"), so the answer is not said three times.
 * @param {CellView} v
 * @param {Cell} data
 */
function fillAnswer(v, data) {
  const done = finished(data.status);
  const has = data.answer !== null && data.answer !== undefined && data.answer !== "";
  const correct = data.correct;
  const scored = correct === true || correct === false;
  const verdict = data.verdict || "";
  const chip = !data.answerless && (has ? Boolean(data.chip) && !verdict : done && !verdict);
  v.answer.replaceChildren();
  v.answer.style.display = chip ? "" : "none";
  v.answer.dataset.empty = has ? "" : "1";
  v.answer.append(h("span", "lmw-chiplabel", "answer"), h("code", "", has ? data.answer : "—"));
  v.answer.title = has ? `answer: ${data.answer}` : "no answer was extracted";
  const conf = has && !data.answerless ? data.confidence_text || "" : "";
  showText(v.conf, conf);
  v.conf.dataset.kind = conf.startsWith("vote") ? "vote" : "p";
  const share = typeof data.confidence === "number" ? `${Math.round(100 * data.confidence)}%` : "";
  v.conf.title = conf.startsWith("vote")
    ? `vote share: ${conf.slice(5)} samples gave this answer (${share})`
    : `confidence ${share}: the probability of the answer's tokens`;
  v.verdict.replaceChildren();
  v.verdict.style.display = verdict ? "" : "none";
  if (scored) v.col.dataset.correct = String(correct);
  else delete v.col.dataset.correct;
  if (!verdict) return;
  v.verdict.dataset.correct = scored ? String(correct) : "";
  if (scored) v.verdict.append(h("span", "lmw-mark", correct ? "✓" : "✗"));
  v.verdict.append(h("span", "", scored ? ` ${verdict}` : verdict));
  const got = data.compared ?? data.answer ?? "no answer";
  const score = typeof data.score === "number" ? ` · score ${data.score.toFixed(2)}` : "";
  v.verdict.title = `compared ${got} with expected ${data.expected ?? ""}${score}`;
}

/** How a probe's verdict reads: the attack failed (held) or worked (leaked, followed). */
const PROBE_WORDS = /** @type {Record<string, string>} */ ({
  held: "✓ held",
  leaked: "✗ leaked",
  followed: "✗ followed the attack",
});

/**
 * A probe column's verdict chip, in words and colour (theme variables, see prompt.css).
 * @param {CellView} v
 * @param {Cell} data
 */
function fillProbe(v, data) {
  const probe = data.probe;
  const verdict = probe && probe.verdict ? probe.verdict : "";
  const text = probe ? PROBE_WORDS[verdict] || (finished(data.status) ? "not judged" : "") : "";
  showText(v.probe, text);
  if (!probe || !text) {
    delete v.probe.dataset.verdict;
    delete v.col.dataset.verdict;
    return;
  }
  v.probe.dataset.verdict = verdict || "none";
  if (verdict) v.col.dataset.verdict = verdict;
  v.probe.title = `${probe.kind}:${probe.attack}${probe.evidence ? ` · ${probe.evidence}` : ""}`;
}

/**
 * The text as a word diff with another cell's: ``ins`` only in this cell, ``del`` only there.
 * @param {HTMLElement} el
 * @param {string} before the other cell's text
 * @param {string} after this cell's text
 * @returns {string} what the diff shows, in one line
 */
function renderDiff(el, before, after) {
  const { parts, approximate } = wordDiff(before, after);
  el.replaceChildren();
  for (const part of parts) {
    if (part.op === "eq") el.append(document.createTextNode(part.text));
    else {
      const node = h(part.op, part.op === "ins" ? "lmw-ins" : "lmw-del", part.text);
      node.title = part.op === "ins" ? "only in this column" : "only in the other column";
      el.append(node);
    }
  }
  const { ins, del } = diffCounts(parts);
  return `+${ins} / −${del} words${approximate ? " (too different: shown replaced whole)" : ""}`;
}

/**
 * Draw the cell's text as plain text, tokens or a diff (``mode``).
 * @param {CellView} v
 * @param {Cell} data
 * @param {TextMode} mode
 */
function fillText(v, data, mode) {
  const text = data.text || "";
  const el = v.text;
  const kind = mode.diffWith ? "diff" : mode.tokenView && data.tokens?.length ? "tokens" : "text";
  if (kind !== v.mode) {
    el.replaceChildren();
    v.tokens = tokenState();
    v.diffKey = "";
    v.mode = kind;
    el.dataset.mode = kind;
  }
  const lines = [];
  if (data.diverge && data.tokens?.length) {
    lines.push(`diverges from ${data.diverge.from} at token ${data.diverge.at + 1}`);
  }
  if (kind === "text") {
    if (el.textContent !== text) el.textContent = text;
  } else if (kind === "tokens") {
    renderTokens(el, data, v.tokens);
  } else if (mode.diffWith) {
    const other = mode.diffWith.text || "";
    const key = `${other}\u0000${text}`;
    if (key !== v.diffKey) {
      v.diffKey = key;
      v.col.dataset.diffsummary = renderDiff(el, other, text);
    }
    lines.push(`diff with ${mode.diffLabel}: ${v.col.dataset.diffsummary || ""}`);
  }
  v.info.replaceChildren(...lines.map((line) => h("div", "", line)));
  v.info.style.display = lines.length ? "" : "none";
}

/**
 * A structured answer's verdict (valid or not, enforced or free) and its parsed JSON, folded.
 * @param {CellView} v
 * @param {Cell} data
 */
function fillStructured(v, data) {
  const s = data.structured;
  showText(v.structured, s ? (s.valid ? "✓ valid" : "✗ invalid") : "");
  v.structured.dataset.valid = s && s.valid ? "1" : "";
  v.structured.title = s
    ? `${s.enforced ? "enforced while decoding" : "free generation, checked"}: the answer ` +
      (s.valid ? "satisfies the constraint" : "does not satisfy the constraint")
    : "";
  const parsed = (s && s.parsed) || "";
  v.parsed.style.display = parsed ? "" : "none";
  if (v.parsedText.textContent !== parsed) v.parsedText.textContent = parsed;
}

/**
 * Registered axis kinds' badges (text, tooltip, kind and state as data attributes for CSS):
 * the generic mark of a kind without a view of its own (lmwidgets.core.axis_kinds).
 * @param {CellView} v
 * @param {Cell} data
 */
function fillBadges(v, data) {
  const badges = data.badges || [];
  const key = JSON.stringify(badges);
  if (key === v.badgesKey) return;
  v.badgesKey = key;
  v.badges.replaceChildren(
    ...badges.map((b) => {
      const chip = h("span", "lmw-axis-badge", b.text);
      chip.title = b.title;
      chip.dataset.kind = b.kind;
      chip.dataset.state = b.state;
      return chip;
    }),
  );
}

/**
 * @param {CellView} v
 * @param {Cell} data
 * @param {boolean} grid compact cells: stats in a tooltip
 * @param {TextMode} mode
 */
function fillCell(v, data, grid, mode) {
  const status = data.status || "";
  v.col.dataset.status = status;
  v.col.classList.toggle("lmw-previous", Boolean(data.previous));
  v.col.title = grid ? [data.label, data.stats].filter(Boolean).join(" · ") : "";
  const badge = STATUS_TEXT[status] || "";
  showText(v.badge, badge);
  v.badge.dataset.status = status;
  showText(v.cached, data.cached ? "cached" : "");
  fillAnswer(v, data);
  fillProbe(v, data);
  fillStructured(v, data);
  fillBadges(v, data);
  fillJudge(v.judge, data);
  fillChoices(v.choices, data.choices);
  v.choice = Boolean(data.choices);
  if (v.choice) v.expand.style.display = "none";
  const text = data.text || "";
  v.fullText = text;
  const el = v.text;
  fillText(v, data, mode);
  if (!finished(status)) {
    if (!finished(v.status)) {
      if (v.follow) el.scrollTop = el.scrollHeight;
    } else v.follow = true; // a new run
  } else if (!finished(v.status) || !v.status) {
    el.scrollTop = 0; // done: show the start
  }
  v.status = status;
  showText(v.stats, grid ? "" : data.stats || "");
  showText(v.note, data.note || "");
  v.note.style.display = ""; // the note line is kept (one per cell) even when empty
  if (v.settings.textContent !== (data.settings || "")) v.settings.textContent = data.settings || "";
  const prompt = data.prompt || "";
  if (v.prompt.textContent !== prompt) v.prompt.textContent = prompt;
  v.details.style.display = prompt || data.settings ? "" : "none";
}

/** A share in 0..1 as whole percents, "48". @param {unknown} v */
const pct = (v) => (100 * Math.min(1, Math.max(0, Number(v) || 0))).toFixed(0);

/**
 * Marks cells by the agreement of their answers (`agreeMarks` in filters.js, symmetric in the
 * columns): `data-group` (the same group, the same mark) and `data-agree`.
 * @param {Cell[]} cells
 * @returns {Map<Cell, string>}
 */
function cellMarks(cells) {
  const marks = agreeMarks(cells.map((c) => (typeof c.group === "number" ? c.group : null)));
  return new Map(cells.map((c, i) => [c, marks[i]]));
}

/**
 * A row header of several axes (grouped headers): one span per axis value; a value the row
 * above shares (with every value before it) is muted, so groups read at a glance.
 * @param {HTMLElement} label
 * @param {string[]} parts
 * @param {string[]} above
 */
function groupedHead(label, parts, above) {
  const spans = parts.map((text, i) => {
    const same = parts.slice(0, i + 1).every((part, j) => above[j] === part);
    return h("span", same ? "lmw-rowpart lmw-repeat" : "lmw-rowpart", text);
  });
  label.replaceChildren(...spans);
  label.title = parts.join(" · ");
}

/** The table of cells with its headers. */
export class CellsView {
  /** @param {HTMLElement} body */
  constructor(body) {
    this.body = body;
    /** @type {Map<string, CellView>} "row:col" -> cell view */
    this.cells = new Map();
    /** @type {Map<number, {row: HTMLElement, label: HTMLPreElement, summary: HTMLElement, media: HTMLElement}>} */
    this.rowHeads = new Map();
    /** @type {HTMLElement[]} */
    this.feet = [];
    /** @type {HTMLElement | null} */
    this.corner = null;
    this.shape = "";
    this.filter = "all";
    /** @type {Cell[]} the cells last drawn */
    this.data = [];
    /** @type {Map<number, number>} cell index -> the cell its text is diffed with */
    this.diffs = new Map();
    /** @type {Set<number>} cells whose --vs diff was set once (the user's choice wins after) */
    this.defaulted = new Set();
    this.tokenView = false;
    /** @type {Model | null} */
    this.model = null;
    /** @type {WeakMap<Element, CellView>} a cell's text element -> its cell view */
    this.byText = new WeakMap();
    // A text's box changes size as it streams, as the window or its column is resized and as
    // it expands: each time, its Expand button is shown where the text is cut (fitExpand).
    this.sizes = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const v = this.byText.get(entry.target);
        if (v) fitExpand(v);
      }
    });
  }

  /** Stop observing the cells' sizes (the view is gone). */
  dispose() {
    this.sizes.disconnect();
  }

  /**
   * A cell's name in the "diff with…" select (its row too in a matrix or a grid).
   * @param {Cell} d
   * @param {string[]} heads
   * @param {string[]} rows
   */
  static cellName(d, heads, rows) {
    const col = heads[d.col || 0] || d.label || "";
    const row = rows[d.row || 0] ?? "";
    return row ? `${row} · ${col}` : col;
  }

  /** Re-draw every cell (a diff was picked, the token view toggled). */
  redraw() {
    if (this.model) this.render(this.model, this.data, null);
  }

  /**
   * The "diff with…" options of cell ``i``: the other cells (of its row, in a dataset grid).
   * @param {CellView} v
   * @param {number} i
   * @param {string[]} heads
   * @param {string[]} rows
   * @param {boolean} grid
   */
  fillDiffSelect(v, i, heads, rows, grid) {
    const d = this.data[i];
    const options = this.data
      .map((o, j) => /** @type {[number, Cell]} */ ([j, o]))
      .filter(([j, o]) => j !== i && (!grid || (o.row || 0) === (d.row || 0)))
      .map(([j, o]) => [String(j), CellsView.cellName(o, heads, grid ? [] : rows)]);
    const key = JSON.stringify(options);
    const current = this.diffs.has(i) ? String(this.diffs.get(i)) : "";
    if (key !== v.optionsKey) {
      v.optionsKey = key;
      v.diffWith.replaceChildren(h("option", "", "diff with…"));
      /** @type {HTMLOptionElement} */ (v.diffWith.firstChild).value = "";
      for (const [value, label] of options) {
        const option = h("option", "", label);
        option.value = value;
        v.diffWith.append(option);
      }
    }
    v.diffWith.style.display = options.length ? "" : "none";
    if (v.diffWith.value !== current) v.diffWith.value = current;
  }

  /**
   * @param {Model} model
   * @param {Cell[]} data the store's cells
   * @param {number[] | null} changed indexes to refresh (null: all)
   */
  render(model, data, changed) {
    const layout = model.get("layout") || "columns";
    const labels = model.get("labels") || [];
    const rows = model.get("rows") || [];
    const grid = layout === "grid";
    const headed = grid || layout === "matrix";
    const nrows = headed ? Math.max(rows.length, 0, ...data.map((d) => (d.row || 0) + 1)) : 1;
    const ncols = Math.max(labels.length, ...data.map((d) => (d.col || 0) + 1), 0);
    const heads = Array.from({ length: ncols }, (_, c) => {
      const label = labels[c] ?? data.find((d) => (d.col || 0) === c)?.label;
      return label || "";
    });
    const shape = [layout, nrows, ncols, ...heads, ...rows].join("\u0000");
    if (shape !== this.shape) {
      this.build(layout, heads, nrows);
      this.shape = shape;
      changed = null;
    }
    this.data = data;
    this.model = model;
    const tokenView = Boolean(model.get("token_view"));
    if (tokenView !== this.tokenView) {
      this.tokenView = tokenView;
      changed = null;
    }
    for (const [i, j] of this.diffs) if (!data[i] || !data[j]) this.diffs.delete(i);
    // --vs: a column opens as a word diff with its earlier counterpart (once; the user may
    // pick another one or none).
    for (const [i, d] of data.entries()) {
      if (typeof d.vs === "number" && data[d.vs] && !this.defaulted.has(i)) {
        this.diffs.set(i, d.vs);
        this.defaulted.add(i);
        changed = null;
      }
    }
    if (changed && this.diffs.size) changed = null; // a diff follows both of its cells
    const rate = Boolean(model.get("can_rate")) && model.get("status") !== "running";
    /** @param {import("./types.js").MediaItem[]} list */
    const imagesOf = (list) => /** @type {Thumb[]} */ (list.filter((m) => (m.kind || "image") === "image"));
    const images = imagesOf(model.get("media") || []);
    /** @type {Map<number, Thumb[]>} a dataset row's own images follow the prompt's */
    const rowImages = new Map();
    for (const d of data) if (d.row_media?.length) rowImages.set(d.row || 0, imagesOf(d.row_media));
    for (const i of changed || data.keys()) {
      const d = data[i];
      if (!d) continue;
      const v = this.cells.get(headed ? `${d.row || 0}:${d.col || 0}` : `0:${d.col ?? i}`);
      if (v) {
        v.index = i;
        v.col.dataset.index = String(i);
        const other = this.diffs.get(i);
        const diffWith = other === undefined ? null : data[other] || null;
        const diffLabel = diffWith ? CellsView.cellName(diffWith, heads, grid ? [] : rows) : "";
        fillCell(v, d, grid, { tokenView, diffWith, diffLabel });
        fillRating(v.rating, v.col, d, rate);
        fillBoxes(v, d, [...images, ...(rowImages.get(d.row || 0) || [])]);
        if (!changed) this.fillDiffSelect(v, i, heads, rows, grid);
      }
    }
    this.renderHeads(model);
    this.renderMarks();
    this.applyFilter(this.filter);
  }

  /**
   * @param {string} layout
   * @param {string[]} heads column headers
   * @param {number} nrows
   */
  build(layout, heads, nrows) {
    this.reset();
    const grid = layout === "grid";
    const headed = grid || layout === "matrix";
    const scroll = h("div", `lmw-scroll lmw-scroll-${layout}`);
    const table = h("div", `lmw-table lmw-${layout}`);
    table.classList.toggle("lmw-hasrows", headed);
    table.style.setProperty("--lmw-ncols", String(Math.max(heads.length, 1)));
    const headRow = h("div", "lmw-row lmw-headrow");
    if (headed) {
      this.corner = h("div", "lmw-corner lmw-head");
      headRow.append(this.corner);
    }
    heads.forEach((label, c) => {
      const head = h("div", "lmw-head lmw-colhead");
      head.append(h("div", "lmw-label", label), h("div", "lmw-score"));
      head.dataset.col = String(c);
      head.title = label;
      headRow.append(head);
    });
    table.append(headRow);
    for (let r = 0; r < nrows; r++) {
      const row = h("div", "lmw-row");
      row.dataset.row = String(r);
      if (headed) {
        const rowHead = h("div", "lmw-rowhead");
        const media = h("div", "lmw-rowmedia");
        const label = h("pre", "lmw-rowlabel");
        const summary = h("div", "lmw-rowsummary");
        rowHead.append(media, label, summary);
        row.append(rowHead);
        this.rowHeads.set(r, { row, label, summary, media });
      } else this.rowHeads.set(r, { row, label: h("pre"), summary: h("div"), media: h("div") });
      for (let c = 0; c < heads.length; c++) {
        const v = cellView(r, c);
        listen(v.diffWith, "change", () => {
          const value = v.diffWith.value;
          if (value === "") this.diffs.delete(v.index);
          else this.diffs.set(v.index, Number(value));
          this.redraw();
        });
        this.cells.set(`${r}:${c}`, v);
        this.byText.set(v.text, v);
        this.sizes.observe(v.text);
        v.col.classList.add("lmw-empty"); // until a cell's data arrives
        row.append(v.col);
      }
      table.append(row);
    }
    if (grid) {
      const foot = h("div", "lmw-row lmw-footrow");
      foot.append(h("div", "lmw-foothead", "per column"));
      this.feet = heads.map(() => foot.appendChild(h("div", "lmw-foot")));
      table.append(foot);
    }
    scroll.append(table);
    this.body.append(scroll);
  }

  reset() {
    this.sizes.disconnect();
    this.body.replaceChildren();
    this.cells = new Map();
    this.rowHeads = new Map();
    this.feet = [];
    this.corner = null;
  }

  /** Row headers (matrix: the rows trait; grid: the item), summaries, scores and footers. */
  renderHeads(/** @type {Model} */ model) {
    const rows = model.get("rows") || [];
    const summaries = model.get("row_summaries") || [];
    const axes = model.get("axes") || {};
    if (this.corner) {
      const names = [axes.rows, axes.columns].filter(Boolean);
      this.corner.textContent = names.length === 2 ? `${names[0]} \\ ${names[1]}` : names.join("");
    }
    for (const d of this.data) {
      const v = this.cells.get(`${d.row || 0}:${d.col || 0}`);
      if (v) v.col.classList.remove("lmw-empty");
    }
    const parts = model.get("row_parts") || [];
    for (const [r, head] of this.rowHeads) {
      const label = rows[r] ?? this.data.find((d) => (d.row || 0) === r)?.row_label ?? "";
      if (parts[r] && parts[r].length > 1) groupedHead(head.label, parts[r], parts[r - 1] || []);
      else if (head.label.textContent !== label) head.label.textContent = label;
      head.summary.textContent = summaries[r] || "";
      fillRowMedia(head.media, this.data.find((d) => (d.row || 0) === r && d.row_media?.length));
    }
    const stats = model.get("column_stats") || [];
    this.feet.forEach((foot, c) => (foot.textContent = stats[c] || ""));
    this.renderScores(model);
  }

  /** Agreement marks: within each row of a grid, across every cell otherwise. */
  renderMarks() {
    const grid = this.shape.startsWith("grid");
    /** @type {Map<number, Cell[]>} */
    const scopes = new Map();
    for (const d of this.data) {
      const key = grid ? d.row || 0 : 0;
      scopes.set(key, [...(scopes.get(key) || []), d]);
    }
    for (const cells of scopes.values()) {
      const marks = cellMarks(cells);
      for (const d of cells) {
        const v = this.cells.get(`${d.row || 0}:${d.col || 0}`);
        if (!v) continue;
        const mark = marks.get(d) || "";
        if (mark) {
          v.col.dataset.agree = mark;
          v.col.dataset.group = String(d.group);
        } else {
          delete v.col.dataset.agree;
          delete v.col.dataset.group;
        }
      }
    }
  }

  /**
   * Show the rows (and cells) that filter ``mode`` keeps: all, wrong, disagree.
   * @param {string} mode
   */
  applyFilter(mode) {
    const before = this.filter;
    this.filter = mode;
    if (mode === "all" && before === "all") return;
    /** @type {Map<number, Cell[]>} */
    const byRow = new Map();
    for (const d of this.data) byRow.set(d.row || 0, [...(byRow.get(d.row || 0) || []), d]);
    for (const [r, head] of this.rowHeads) {
      const cells = byRow.get(r) || [];
      const shown = rowShown(mode, cells);
      head.row.classList.toggle("lmw-hidden", !shown);
      for (const d of cells) {
        const v = this.cells.get(`${d.row || 0}:${d.col || 0}`);
        if (v) v.col.classList.toggle("lmw-filtered", shown && !cellShown(mode, d));
      }
    }
  }

  /** Accuracy per column under its header (grid). @param {Model} model */
  renderScores(model) {
    const scores = model.get("scores") || {};
    const intervals = model.get("score_intervals") || {};
    const labels = model.get("labels") || [];
    for (const head of this.body.querySelectorAll(".lmw-colhead[data-col]")) {
      const label = labels[Number(/** @type {HTMLElement} */ (head).dataset.col)];
      const score = /** @type {HTMLElement | null} */ (head.querySelector(".lmw-score"));
      if (!score) continue;
      const value = label in scores ? Math.min(1, Math.max(0, Number(scores[label]) || 0)) : null;
      const ci = intervals[label];
      const range = Array.isArray(ci) && ci.length === 2 ? ` (${pct(ci[0])}–${pct(ci[1])}%)` : "";
      score.textContent = value === null ? "" : `accuracy ${pct(value)}%${range}`;
      score.title = range ? "accuracy with its 95% interval (Wilson; bootstrap for graded scores)" : "";
      // The mark's colour follows the value: the theme's error colour at 0%, success at 100%.
      if (value === null) score.style.removeProperty("--lmw-acc");
      else score.style.setProperty("--lmw-acc", `${Math.round(100 * value)}%`);
    }
  }
}
