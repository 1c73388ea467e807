// @ts-check
// The popover of the token view: a token's probability and its top alternatives, shown while
// the pointer is on the token or it has keyboard focus (the token then names the popover with
// aria-describedby; Tab reaches a column's first token, the arrow keys the others, ArrowDown or
// Enter the alternatives, Escape closes). Clicking an alternative (or Enter on it) asks the kernel to fork the column
// at that token with the alternative forced. Everything in it is set with textContent.
import { button, h, listen } from "./dom.js";
import { positions, visible } from "./tokens.js";

/** @typedef {import("./types.js").Cell} Cell */
/** @typedef {import("./types.js").ForkRequest} ForkRequest */

let counter = 0;

/**
 * @param {number} p
 */
const percent = (p) => (p >= 0.995 ? p.toFixed(3) : p < 0.001 ? p.toExponential(1) : p.toFixed(3));

export class TokenPopover {
  /**
   * @param {HTMLElement} root the view (the popover is appended to it)
   * @param {object} options
   * @param {(index: number) => Cell | undefined} options.cell the data of cell ``index``
   * @param {() => string} options.forkState "" when forks are possible, else why not
   * @param {(request: ForkRequest) => void} options.onFork
   */
  constructor(root, options) {
    this.root = root;
    this.options = options;
    this.el = h("div", "lmw-popover");
    this.el.id = `lmw-popover-${++counter}`;
    this.el.setAttribute("role", "group");
    this.el.style.display = "none";
    root.append(this.el);
    /** @type {HTMLElement | null} the token shown */
    this.token = null;
    /** @type {HTMLElement | null} a token given focus back by Escape (no popover for it) */
    this.quiet = null;
    this.hideTimer = 0;
    const keep = () => window.clearTimeout(this.hideTimer);
    this.unlisteners = [
      listen(this.el, "pointerenter", keep),
      listen(this.el, "pointerleave", () => this.hideSoon()),
      listen(this.el, "focusout", (/** @type {FocusEvent} */ e) => this.onFocusOut(e)),
      listen(this.el, "keydown", (/** @type {KeyboardEvent} */ e) => this.onKey(e)),
    ];
    // Scrolling moves the token away from a fixed popover; a click elsewhere closes it.
    const onScroll = () => this.hide();
    window.addEventListener("scroll", onScroll, true);
    /** @param {Event} e */
    const onDown = (e) => {
      const target = /** @type {HTMLElement | null} */ (e.target);
      if (this.token && target && !this.el.contains(target) && !target.closest?.(".lmw-tok")) {
        this.hide();
      }
    };
    document.addEventListener("pointerdown", onDown, true);
    this.unlisteners.push(
      () => window.removeEventListener("scroll", onScroll, true),
      () => document.removeEventListener("pointerdown", onDown, true),
    );
  }

  /**
   * Listen on ``body`` for tokens hovered or focused (delegated: spans come and go).
   * @param {HTMLElement} body
   */
  attach(body) {
    /** @param {Event} e */
    const tokenOf = (e) => {
      const target = /** @type {HTMLElement | null} */ (e.target);
      return target && target.closest ? /** @type {HTMLElement | null} */ (target.closest(".lmw-tok[data-i]")) : null;
    };
    this.unlisteners.push(
      listen(body, "pointerover", (e) => {
        const token = tokenOf(e);
        if (token) this.show(token);
      }),
      listen(body, "pointerout", (e) => {
        if (tokenOf(e)) this.hideSoon();
      }),
      listen(body, "focusin", (e) => {
        const token = tokenOf(e);
        if (token && token === this.quiet) this.quiet = null; // focus given back by Escape
        else if (token) this.show(token);
      }),
      listen(body, "focusout", (/** @type {FocusEvent} */ e) => this.onFocusOut(e)),
      listen(body, "keydown", (/** @type {KeyboardEvent} */ e) => {
        const token = tokenOf(e);
        if (!token) return;
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          // Roving focus: one token per column is in the Tab order; arrows move among them.
          const all = [...(token.parentElement?.querySelectorAll(".lmw-tok[data-i]") || [])];
          const next = all[all.indexOf(token) + (e.key === "ArrowRight" ? 1 : -1)];
          if (next) {
            e.preventDefault();
            e.stopPropagation();
            /** @type {HTMLElement} */ (next).focus();
          }
        } else if (e.key === "Escape" && this.token) {
          e.stopPropagation(); // JupyterLab: stay in the cell (no command mode)
          this.hide();
        } else if (e.key === "ArrowDown" || e.key === "Enter") {
          e.preventDefault();
          e.stopPropagation();
          this.show(token);
          /** @type {HTMLElement | null} */ (this.el.querySelector("button.lmw-alt"))?.focus();
        }
      }),
    );
  }

  /** @param {HTMLElement} token */
  show(token) {
    window.clearTimeout(this.hideTimer);
    const i = Number(token.dataset.i);
    const col = /** @type {HTMLElement | null} */ (token.closest(".lmw-col"));
    const index = Number(col?.dataset.index);
    const cell = this.options.cell(index);
    const entry = cell?.tokens?.[i];
    if (!cell || !entry || entry[1] === null || entry[1] === undefined) return;
    if (this.token && this.token !== token) this.token.removeAttribute("aria-describedby");
    this.token = token;
    token.setAttribute("aria-describedby", this.el.id);
    const [text, p, alternatives = [], id = null, forced = false] = entry;
    const where = positions(cell.tokens || [])[i];
    this.el.replaceChildren();
    const said = forced ? ", forced by the constraint" : "";
    this.el.setAttribute("aria-label", `token ${visible(text)}: probability ${percent(p)}${said}`);
    const head = h("div", "lmw-pophead");
    head.append(h("code", "lmw-poptoken", visible(text)), h("span", "lmw-popp", `p = ${percent(p)}`));
    const position = h("span", "lmw-poppos", `token ${where.position + 1}`);
    head.append(position);
    this.el.append(head);
    if (forced) {
      const note = "forced by the constraint: the only token it allowed (p is the model's own)";
      this.el.append(h("div", "lmw-popnote lmw-popforced", note));
    }
    const why = this.options.forkState();
    this.el.append(
      h(
        "div",
        "lmw-popnote",
        alternatives.length
          ? `top ${alternatives.length} alternatives${why ? "" : " · click one to fork here"}`
          : "no alternatives recorded",
      ),
    );
    const list = h("ol", "lmw-alts");
    for (const [altText, altP, altId = null] of alternatives) {
      const chosen = altId !== null && id !== null ? altId === id : altText === text;
      const item = h("li", "lmw-altrow");
      const label = [h("code", "lmw-alttext", visible(altText)), h("span", "lmw-altp", percent(altP))];
      const bar = h("span", "lmw-altbar");
      bar.style.setProperty("--lmw-p", String(Math.max(0, Math.min(1, altP))));
      if (chosen || why) {
        const row = h("span", "lmw-alt");
        row.dataset.chosen = chosen ? "1" : "";
        row.append(...label, bar);
        if (chosen) row.append(h("span", "lmw-altchosen", "chosen"));
        item.append(row);
      } else {
        const fork = button("lmw-alt", "", `Fork: continue with ${visible(altText)} here instead`);
        fork.append(...label, bar);
        listen(fork, "click", () => {
          /** @type {ForkRequest} */
          const request = { index, position: where.position, token: { id: altId, text: altText } };
          if ((cell.tokens || []).some((t) => t[1] === null || t[1] === undefined)) {
            request.sample = where.sample;
          }
          this.hide();
          this.options.onFork(request);
        });
        item.append(fork);
      }
      list.append(item);
    }
    this.el.append(list);
    if (why) this.el.append(h("div", "lmw-popnote", why));
    this.el.style.display = "";
    this.place(token);
  }

  /** @param {HTMLElement} token */
  place(token) {
    const rect = token.getBoundingClientRect();
    const box = this.el.getBoundingClientRect();
    const width = window.innerWidth || document.documentElement.clientWidth;
    const height = window.innerHeight || document.documentElement.clientHeight;
    let left = Math.min(rect.left, width - box.width - 8);
    let top = rect.bottom + 4;
    if (top + box.height > height - 4 && rect.top - box.height - 4 > 0) top = rect.top - box.height - 4;
    left = Math.max(4, left);
    this.el.style.left = `${Math.round(left)}px`;
    this.el.style.top = `${Math.round(top)}px`;
    // An ancestor with a transform or containment (JupyterLab's cells) is the box "fixed"
    // positions are relative to: correct by how far off the popover landed.
    const landed = this.el.getBoundingClientRect();
    const dx = left - landed.left;
    const dy = top - landed.top;
    if (Math.abs(dx) > 0.5 || Math.abs(dy) > 0.5) {
      this.el.style.left = `${Math.round(left + dx)}px`;
      this.el.style.top = `${Math.round(top + dy)}px`;
    }
  }

  hideSoon() {
    window.clearTimeout(this.hideTimer);
    this.hideTimer = window.setTimeout(() => this.hide(), 250);
  }

  hide() {
    window.clearTimeout(this.hideTimer);
    this.el.style.display = "none";
    this.token?.removeAttribute("aria-describedby");
    this.token = null;
  }

  /** @param {FocusEvent} e */
  onFocusOut(e) {
    const next = /** @type {Node | null} */ (e.relatedTarget);
    if (next && (this.el.contains(next) || next === this.token)) return;
    if (next && /** @type {HTMLElement} */ (next).classList?.contains("lmw-tok")) return;
    if (this.el.contains(/** @type {Node} */ (document.activeElement))) return;
    if (!next) return; // the pointer may still be on the token: pointerout hides
    this.hide();
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    const buttons = /** @type {HTMLElement[]} */ ([...this.el.querySelectorAll("button.lmw-alt")]);
    const at = buttons.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (e.key === "Escape") {
      e.stopPropagation();
      const token = this.token;
      this.hide();
      this.quiet = token;
      token?.focus();
    } else if (e.key === "ArrowDown" && buttons.length) {
      e.preventDefault();
      e.stopPropagation();
      buttons[(at + 1) % buttons.length].focus();
    } else if (e.key === "ArrowUp" && buttons.length) {
      e.preventDefault();
      e.stopPropagation();
      if (at <= 0) this.token?.focus();
      else buttons[at - 1].focus();
    }
  }

  dispose() {
    this.hide();
    for (const fn of this.unlisteners) fn();
    this.el.remove();
  }
}
