// @ts-check
// Shapes shared by the modules of the prompt widget (JSDoc only: nothing runs here).

/**
 * A box the model named in its answer, in pixels of the original image.
 * @typedef {object} Box
 * @property {string} [label]
 * @property {number} x1
 * @property {number} y1
 * @property {number} x2
 * @property {number} y2
 * @property {number} [image] index into the widget's images
 */

/**
 * One column (or grid cell) as the kernel sends it. ``v`` counts the kernel's updates of it.
 * @typedef {object} Cell
 * @property {string} [label]
 * @property {string} [text]
 * @property {string | null} [answer]
 * @property {boolean} [chip] whether the answer is shown apart from the text (a part of it)
 * @property {boolean} [answerless] a column asking a question of its own (a probe's attack):
 *   no answer chip at all, not even "no answer"
 * @property {string} [status] running, waiting, eos, length, stopped or error
 * @property {string} [stats]
 * @property {string} [note]
 * @property {number} [row]
 * @property {number} [col]
 * @property {string} [row_label]
 * @property {MediaItem[]} [row_media] a dataset item's own media (its row's first cell only)
 * @property {Box[]} [boxes]
 * @property {number | null} [group] agreement group of its answer (0: the most common)
 * @property {boolean | null} [correct] whether the answer matched ``expected``
 * @property {number | null} [score] the scorer's verdict in 0..1
 * @property {string | null} [compared] what the scorer compared with ``expected``
 * @property {string} [verdict] how it was judged: "contains Paris", "got 7 · expected 6"
 * @property {string | null} [expected]
 * @property {string} [prompt] the exact prompt (cut)
 * @property {string} [settings] temperature, seed, max tokens, adapter, model in one line
 * @property {TokenEntry[]} [tokens] token data (--logprobs K): one entry per generated token
 * @property {{ at: number, from: string } | null} [diverge] where its tokens part from a sibling
 * @property {number | null} [confidence] the answer's probability or vote share (0..1)
 * @property {string} [confidence_text] "p=0.82" or "vote 3/5"
 * @property {number | null} [vs] --vs: the index of the earlier column this one is diffed with
 * @property {boolean} [previous] --vs: an earlier run's column, shown as it was
 * @property {boolean} [cached] the text came from the response cache
 * @property {ProbeVerdict | null} [probe] a probe column's attack and verdict (--probe)
 * @property {{valid: boolean, enforced: boolean, kind: string, parsed: string} | null} [structured]
 *   a structured answer's verdict and its parsed JSON (written out)
 * @property {AxisBadge[]} [badges] registered axis kinds' generic badges
 * @property {"up" | "down" | null} [rating] your thumbs on it (ratings.js)
 * @property {JudgeCell | null} [judge] the judge's verdict (--judge): chip, tone, reasoning
 * @property {ChoiceBars | null} [choices] given choices' probabilities (--choices)
 * @property {number} [v]
 */

/**
 * A registered axis kind's per-cell badge (lmwidgets.core.axis_kinds.badges).
 * @typedef {object} AxisBadge
 * @property {string} kind the axis kind's name
 * @property {string} text what the chip says
 * @property {string} title its tooltip
 * @property {string} state a word for CSS (data-state)
 */

/**
 * Blind pairwise mode's current pair (cell indexes, shown as A and B), or that all are done.
 * @typedef {object} BlindPair
 * @property {number} [a]
 * @property {number} [b]
 * @property {number} [number]
 * @property {number} [total]
 * @property {number} [seed]
 * @property {string} [item] the dataset item
 * @property {boolean} [done]
 */

/**
 * A judge's verdict on a cell: the chip's words, its tone (good, mid, bad, base: a pairwise
 * baseline, none: unjudged), a tooltip (judge, rubric, a note) and the judge's reasoning (shown
 * on demand).
 * @typedef {object} JudgeCell
 * @property {string} chip
 * @property {string} tone
 * @property {string} title
 * @property {string} reasoning
 */

/**
 * A cell's given choices: their texts, probabilities among them, log-probabilities, the acc
 * and acc_norm picks, the expected choice (-1: none) and how many more were not sent.
 * @typedef {object} ChoiceBars
 * @property {string[]} texts
 * @property {number[]} probs
 * @property {number[]} logprobs
 * @property {number} acc
 * @property {number} acc_norm
 * @property {number} expected
 * @property {number} more
 */

/**
 * A probe column's attack and verdict (held, leaked, followed; null before it is judged).
 * @typedef {object} ProbeVerdict
 * @property {string} kind
 * @property {string} attack
 * @property {string | null} verdict
 * @property {string} evidence
 */

/**
 * An alternative at a token's position: its text, probability and id (null: unknown).
 * @typedef {[string, number, (number | null)?]} Alternative
 */

/**
 * One generated token: [text, p, alternatives, id, forced]. ``p`` null marks a separator between
 * the samples of a multi-sample cell (text only, not a token); ``forced`` (present only when
 * true) marks a token a structured-answer constraint forced (the only token its mask allowed).
 * @typedef {[string, number | null, Alternative[]?, (number | null)?, boolean?]} TokenEntry
 */

/**
 * A click on an alternative: fork cell ``index`` at token ``position`` with ``token`` forced.
 * @typedef {{ index: number, position: number, sample?: number, token: { id: number | null, text: string } }} ForkRequest
 */

/**
 * A change of one cell in a "cells" message: changed fields replace the old ones; ``append``
 * extends the text the cell had at version ``base`` (``tokens_append`` its tokens, likewise).
 * @typedef {Cell & { index: number, base?: number, append?: string, tokens_append?: TokenEntry[] }} CellUpdate
 */

/**
 * One of the prompt's media items as the widget previews it (see lmwidgets/media/base.py):
 * its kind, name, a small picture (``src``) and caption; a kind's own module may use more keys.
 * @typedef {object} MediaItem
 * @property {string} [kind]
 * @property {string} [name]
 * @property {string} [src]
 * @property {string} [caption]
 * @property {number} [width]
 * @property {number} [height]
 * @property {number[] | null} [region]
 */

/**
 * A thumbnail of one of the prompt's images (the original's size; region in its pixels).
 * @typedef {object} Thumb
 * @property {string} [name]
 * @property {string} [src]
 * @property {number} width
 * @property {number} height
 * @property {number[] | null} [region]
 */

/**
 * The waveform of one of the prompt's audio clips (a small PNG) and what the model heard.
 * @typedef {object} AudioThumb
 * @property {"audio"} kind
 * @property {string} [name]
 * @property {string} [src] data:image/png URL of the waveform
 * @property {number} duration seconds heard (the --clip part, or the whole clip)
 * @property {number[] | null} [clip] [start, end] in seconds, when --clip asked about a part
 */

/**
 * The widget's synced traits (see lmwidgets/notebook/widgets/prompt_view.py).
 * @typedef {object} PromptState
 * @property {string} title
 * @property {Cell[]} columns
 * @property {string} status
 * @property {string} message
 * @property {string} layout "columns", "matrix" or "grid"
 * @property {string[]} labels column headers
 * @property {string[]} rows matrix: row headers
 * @property {{ rows?: string, columns?: string }} axes what varies along rows and columns
 * @property {string} summary how many columns agree (one line)
 * @property {string[]} row_summaries agreement of each row
 * @property {string[][]} row_parts matrix with several row axes: each row's value per axis
 * @property {string[]} column_choices the axes that can form the columns
 * @property {string} column_axis the axis that forms the columns
 * @property {string[]} column_stats grid: each column's stats (footer row)
 * @property {number} min_column_width CSS pixels
 * @property {Record<string, number>} scores
 * @property {Record<string, number[]>} [score_intervals] 95% interval of each column's accuracy
 * @property {string} run_stats the finished run's speed, once for all its columns
 * @property {{ done?: number, total?: number, text?: string }} progress
 * @property {boolean} stop_requested
 * @property {MediaItem[]} media
 * @property {boolean} can_rerun
 * @property {boolean} token_view the "tokens" toggle: text shown as tokens shaded by probability
 * @property {boolean} can_fork whether clicking an alternative token forks a column
 * @property {boolean} can_get_tokens whether "get them" may re-run this view with token data
 * @property {boolean} can_rate whether the cells offer thumbs (a finished run)
 * @property {boolean} blind blind pairwise mode
 * @property {BlindPair} blind_pair
 * @property {number} run
 * @property {string} uid identifies the widget: its views share one store of streamed cells
 */

/** @typedef {import("@anywidget/types").AnyModel<PromptState>} Model */

/**
 * A region drawn on thumbnail ``image`` (its index), in pixels of the original image.
 * @typedef {{ image: number, box: number[], mode?: string }} Region
 */

export {};
