// @ts-check
// Blind pairwise mode: two columns side by side as A and B, their labels hidden until the user
// reveals them, and the question "which is better: A, B, tie" (buttons, or the keys a, b, t, s
// to skip and r to reveal while the panel has the focus). The kernel draws the pairs (shuffled,
// from a recorded seed: the `blind_pair` trait) and records each answer by the columns'
// labels, never their positions. All text is set with textContent.
import { button, h, listen } from "./dom.js";

/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").BlindPair} BlindPair */

/** Keys of the focused panel and what each answers. */
const KEYS = /** @type {Record<string, string>} */ ({ a: "a", b: "b", t: "tie", s: "skip" });

/**
 * One side of the pair: its letter, its label (hidden until revealed), its text.
 * @param {string} letter
 */
function pane(letter) {
  const el = h("div", "lmw-blindpane");
  const head = h("div", "lmw-blindhead");
  const name = h("span", "lmw-blindletter", letter);
  const label = h("span", "lmw-blindlabel");
  head.append(name, label);
  const text = h("pre", "lmw-blindtext");
  el.append(head, text);
  return { el, label, text };
}

export class BlindPanel {
  /**
   * @param {(message: Record<string, unknown>) => void} send a custom message to the kernel
   * @param {() => void} leave switch blind mode off
   */
  constructor(send, leave) {
    this.send = send;
    this.el = h("div", "lmw-blind");
    this.el.tabIndex = 0;
    this.el.setAttribute("role", "region");
    this.el.setAttribute("aria-label", "blind pairwise rating");
    this.info = h("span", "lmw-blindinfo");
    this.reveal = button("lmw-reveal", "reveal labels", "Show which column is A and which is B (key r)");
    this.leave = button("lmw-leaveblind", "leave blind mode", "Back to every column");
    const top = h("div", "lmw-blindtop");
    top.append(this.info, this.reveal, this.leave);
    this.item = h("pre", "lmw-blinditem");
    this.a = pane("A");
    this.b = pane("B");
    const panes = h("div", "lmw-blindpanes");
    panes.append(this.a.el, this.b.el);
    this.question = h("div", "lmw-blindask");
    this.choices = [
      ["a", "A is better", "key a"],
      ["b", "B is better", "key b"],
      ["tie", "tie", "As good (or as bad) as each other: key t"],
      ["skip", "skip", "Next pair, nothing recorded: key s"],
    ].map(([choice, text, title]) => {
      const node = button(`lmw-choice lmw-choice-${choice}`, text, title);
      node.dataset.choice = choice;
      return node;
    });
    const keys = h("span", "lmw-blindkeys", "keys: a · b · t · s, r reveals");
    this.question.append(h("span", "lmw-blindq", "Which is better?"), ...this.choices, keys);
    this.done = h("div", "lmw-blinddone");
    this.el.append(top, this.item, panes, this.question, this.done);
    /** @type {BlindPair} */
    this.pair = {};
    /** @type {Cell[]} */
    this.cells = [];
    this.key = "";
    this.revealed = false;
    this.pending = false;
    this.unlisteners = [
      listen(this.reveal, "click", () => this.toggleReveal()),
      listen(this.leave, "click", leave),
      ...this.choices.map((node) => listen(node, "click", () => this.choose(node.dataset.choice || ""))),
      listen(this.el, "keydown", (/** @type {KeyboardEvent} */ event) => this.onKey(event)),
    ];
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (!(key in KEYS) && key !== "r") return;
    // Stopped here: JupyterLab's command-mode shortcuts (a, b insert cells) never see it.
    event.preventDefault();
    event.stopPropagation();
    if (key === "r") this.toggleReveal();
    else this.choose(KEYS[key]);
  }

  toggleReveal() {
    this.revealed = !this.revealed;
    this.drawLabels();
  }

  /** @param {string} choice */
  choose(choice) {
    const p = this.pair;
    if (this.pending || typeof p.a !== "number" || typeof p.b !== "number") return;
    this.pending = true;
    this.send({ type: "prefer", a: p.a, b: p.b, choice, revealed: this.revealed });
    this.drawButtons();
  }

  drawLabels() {
    const cells = this.cells;
    const p = this.pair;
    const name = (/** @type {number | undefined} */ i) =>
      typeof i === "number" && cells[i] ? `= ${cells[i].label || ""}` : "";
    this.a.label.textContent = this.revealed ? name(p.a) : "";
    this.b.label.textContent = this.revealed ? name(p.b) : "";
    this.reveal.textContent = this.revealed ? "hide labels" : "reveal labels";
    this.reveal.setAttribute("aria-pressed", String(this.revealed));
    this.el.dataset.revealed = this.revealed ? "1" : "";
  }

  drawButtons() {
    for (const node of this.choices) node.disabled = this.pending;
  }

  /**
   * Show ``pair`` of ``cells`` (hidden when blind mode is off).
   * @param {boolean} on
   * @param {BlindPair} pair
   * @param {Cell[]} cells
   */
  render(on, pair, cells) {
    this.el.style.display = on ? "" : "none";
    this.cells = cells;
    const key = JSON.stringify([pair.a, pair.b, pair.number, pair.seed, pair.done]);
    if (key !== this.key) {
      const first = this.key === "";
      this.key = key;
      this.revealed = false;
      this.pending = false;
      if (on && !first) this.el.focus({ preventScroll: true });
    }
    this.pair = pair;
    const done = Boolean(pair.done);
    // Until the kernel has drawn the pairs (just switched on), nothing to judge yet.
    const waiting = !done && typeof pair.a !== "number";
    const idle = done || waiting;
    this.question.style.display = idle ? "none" : "";
    this.item.style.display = !idle && pair.item ? "" : "none";
    this.item.textContent = pair.item || "";
    this.a.el.parentElement?.style.setProperty("display", idle ? "none" : "");
    this.reveal.style.display = idle ? "none" : "";
    this.done.style.display = done ? "" : "none";
    this.done.textContent = done
      ? pair.total
        ? `All ${pair.total} pairs judged. The leaderboard ranks them: lmwidgets.leaderboard().`
        : "Every pair of this run is judged already (judge one again with Comparison.prefer)."
      : "";
    this.info.textContent = done
      ? "blind pairwise"
      : waiting
        ? "blind pairwise · drawing the pairs…"
        : `blind pairwise · pair ${pair.number || 0} of ${pair.total || 0}`;
    const a = typeof pair.a === "number" ? cells[pair.a] : undefined;
    const b = typeof pair.b === "number" ? cells[pair.b] : undefined;
    if (this.a.text.textContent !== (a?.text || "")) this.a.text.textContent = a?.text || "";
    if (this.b.text.textContent !== (b?.text || "")) this.b.text.textContent = b?.text || "";
    this.drawLabels();
    this.drawButtons();
  }

  focus() {
    this.el.focus({ preventScroll: true });
  }

  dispose() {
    for (const fn of this.unlisteners) fn();
    this.el.remove();
  }
}
