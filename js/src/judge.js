// @ts-check
// A judge's verdict in a cell (--judge): a chip that says it ("judge 4/5", "judge pass",
// "better than A", "pairwise baseline", "not judged") with its tone told by the border in theme
// colours, its tooltip naming the judge, the rubric and whether the verdict format was enforced
// while decoding (the kernel writes it: judging.shown_verdict), and the judge's reasoning on
// demand in a folded <details> below the text. All of it is set as text.
import { h } from "./dom.js";

/** @typedef {import("./types.js").Cell} Cell */

/**
 * @typedef {object} JudgeView
 * @property {HTMLSpanElement} chip the verdict chip (in the cell's top line)
 * @property {HTMLDetailsElement} details the reasoning, folded
 * @property {HTMLPreElement} text
 */

/** @returns {JudgeView} */
export function judgeView() {
  const chip = h("span", "lmw-judge");
  const details = h("details", "lmw-judgewhy");
  details.append(h("summary", "", "judge's reasoning"));
  const text = h("pre", "lmw-judgetext");
  details.append(text);
  details.style.display = "none";
  chip.style.display = "none";
  return { chip, details, text };
}

/**
 * Show ``data.judge`` (nothing for a cell without a judge).
 * @param {JudgeView} jv
 * @param {Cell} data
 */
export function fillJudge(jv, data) {
  const judge = data.judge;
  const chipText = judge ? judge.chip : "";
  if (jv.chip.textContent !== chipText) jv.chip.textContent = chipText;
  jv.chip.style.display = chipText ? "" : "none";
  jv.chip.dataset.tone = judge ? judge.tone : "";
  jv.chip.title = judge ? judge.title : "";
  const why = judge ? judge.reasoning : "";
  jv.details.style.display = why ? "" : "none";
  if (jv.text.textContent !== why) jv.text.textContent = why;
}
