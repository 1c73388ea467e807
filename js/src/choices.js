// @ts-check
// Given choices (--choices): one bar per choice, as long as its probability among the choices
// (the softmax of their log-probabilities), the likeliest (lm-eval's acc pick) marked, the
// length-normalized pick (acc_norm) named when it differs, the expected choice outlined. All
// text is set as text; colours are theme variables (prompt.css).
import { h } from "./dom.js";

/** @typedef {import("./types.js").ChoiceBars} ChoiceBars */

/**
 * One choice's row: its text, a bar and its probability.
 * @param {ChoiceBars} bars
 * @param {number} index
 */
function choiceRow(bars, index) {
  const p = bars.probs[index] ?? 0;
  const row = h("div", "lmw-choice");
  row.dataset.pick = index === bars.acc ? "acc" : "";
  row.dataset.norm = index === bars.acc_norm ? "1" : "";
  row.dataset.expected = index === bars.expected ? "1" : "";
  const label = h("span", "lmw-choicetext", bars.texts[index] ?? "");
  const track = h("span", "lmw-choicetrack");
  const fill = h("span", "lmw-choicefill");
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  track.append(fill);
  const value = h("span", "lmw-choicep", `${(100 * p).toFixed(p < 0.1 ? 1 : 0)}%`);
  const lp = bars.logprobs[index];
  const marks = [
    index === bars.acc ? "likeliest (acc)" : "",
    index === bars.acc_norm ? "best per character (acc_norm)" : "",
    index === bars.expected ? "expected" : "",
  ].filter(Boolean);
  row.title =
    `${bars.texts[index] ?? ""}: p=${p.toFixed(4)} among the choices · ` +
    `log-probability ${typeof lp === "number" ? lp.toFixed(4) : "?"}` +
    (marks.length ? ` · ${marks.join(" · ")}` : "");
  row.append(label, track, value);
  return row;
}

/**
 * Draw ``bars`` (a cell's choices) into ``el``, or hide it for a cell without choices.
 * @param {HTMLElement} el
 * @param {ChoiceBars | null | undefined} bars
 */
export function fillChoices(el, bars) {
  const key = bars ? JSON.stringify(bars) : "";
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.replaceChildren();
  el.style.display = bars ? "" : "none";
  if (!bars) return;
  el.setAttribute("role", "list");
  el.setAttribute("aria-label", "the choices' probabilities");
  for (let i = 0; i < bars.texts.length; i++) el.append(choiceRow(bars, i));
  const notes = [];
  if (bars.acc_norm !== bars.acc && bars.texts[bars.acc_norm] !== undefined) {
    notes.push(`per character (acc_norm): ${bars.texts[bars.acc_norm]}`);
  }
  if (bars.more > 0) notes.push(`${bars.more} more choices (see Result.choice_logprobs)`);
  if (notes.length) el.append(h("div", "lmw-choicenote", notes.join(" · ")));
}
