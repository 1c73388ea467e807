"""The live view of a run: the streaming widget plus its static copy for kernel-less viewers.

Each run shows two outputs: the :class:`~lmwidgets.notebook.widgets.PromptView` widget, and right
after it a static output (escaped HTML, markdown, text and the run records) that is filled in when
the run ends. JupyterLab hides the static copy while the live widget is rendered (CSS in the
widget); a notebook opened without a kernel, nbconvert and GitHub show the static copy, and the
copy's own rule (:data:`LIVE_COPY_STYLE`) hides the widget output that cannot render there
("Error displaying widget: model not found"), so the copy stands alone. The widget output's
text/plain names the run's shape only: the copy says how it finished.

While generating, :meth:`LiveView.update_running` sends the widget only the columns whose text,
status or stats changed (:meth:`PromptView.stream_columns`: one custom message per push, a grown
text as its new part). The widget's ``columns`` trait gets a full copy at the start and the end of
a run; how views rendered in between (a second view, a reload while the kernel is alive) still show
the latest state is described in :class:`PromptView`.

The view is laid out on axes (:func:`~lmwidgets.core.layout.axes_of`): a comparison whose columns
differ in two things (strategies and adapters, strategies and models...) is a matrix with row and
column headers; one that differs in one thing is one row of columns; a dataset run is a grid whose
rows are the items. At the end of a run every row's answers are grouped by
:func:`lmwidgets.core.answers.scored_agreement` (columns that agree share a mark; on a scored
dataset, answers judged right agree; not where the columns ask different things, see
:func:`lmwidgets.core.layout.agreement_applies`), and a scored dataset's header gets each column's accuracy
interval and, with two columns, the paired comparison (:mod:`lmwidgets.core.stats`).

Token view (issue 15): with ``--logprobs K`` each cell also carries its tokens
(:mod:`~lmwidgets.notebook.token_cells`: text, probability, top alternatives, id; streamed as
``tokens_append`` in the same messages as the text), where its tokens part from a comparable column
(:mod:`lmwidgets.notebook.divergence`) and its answer's confidence. The widget's ``tokens`` toggle
shades them. It acts on its own view only: a view without token data offers to get them, which
re-runs that comparison (its recorded seeds) with ``--logprobs 5`` in the same view
(:meth:`LiveView.enable_tokens`); later cells get token details only when the cell or ``%config
LmMagics.logprobs`` asks. :meth:`LiveView.enable_fork` lets a click on an alternative token fork a
column.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lmwidgets.core.answers import scored_agreement
from lmwidgets.core.axis_kinds import all_kinds as all_axis_kinds
from lmwidgets.core.axis_kinds import badges as axis_badges
from lmwidgets.core.layout import _model_name, agreement_applies, asks_its_own_question, axes_of
from lmwidgets.core.progress import batch_progress
from lmwidgets.core.safe_text import escape_html
from lmwidgets.errors import PromptError
from lmwidgets.notebook.cell_info import (
    _column_stats,
    _prompt_of,
    result_settings,
    undefined_notes,
    variant_settings,
)
from lmwidgets.notebook.divergence import divergence_key, divergences, group_by_key
from lmwidgets.notebook.live_ratings import LiveRatings
from lmwidgets.notebook.token_cells import (
    _confidence,
    _decoder,
    _separator,
    _stream_key,
    detail_entry,
    token_entry,
)
from lmwidgets.prompting.structured_axis import structured_cell  # noqa: F401 (importable here)
from lmwidgets.run.choices import choice_bars
from lmwidgets.run.records import RECORD_MIME, bundle_payload
from lmwidgets.run.runner import media_data, row_media, shared_media
from lmwidgets.sharing.static_matrix import answer_shown, verdict_words

if TYPE_CHECKING:
    from lmwidgets.core.results import Comparison, Result
    from lmwidgets.core.variant import Variant
    from lmwidgets.engines.base import StopSignal
    from lmwidgets.notebook.widgets import PromptView
    from lmwidgets.notebook.widgets.prompt_view import RegionHandler
    from lmwidgets.run.runner import _Stream

#: The live grid shows at most this many dataset items (all of them are in the Comparison).
MAX_GRID_ROWS = 100
#: The prompt shown in a column is cut to this many characters (all of it is in Result.prompt);
#: dataset grid cells keep less (every item has its own prompt).
PROMPT_LIMIT = 8_000
GRID_PROMPT_LIMIT = 2_000

#: How many alternatives per token a view's "get them" re-run asks for (``--logprobs 5``).
TOKEN_ALTERNATIVES = 5

_widgets: weakref.WeakKeyDictionary[Any, PromptView] = weakref.WeakKeyDictionary()


def widget_of(comparison: Comparison) -> PromptView | None:
    """The live widget that showed ``comparison`` (None when it was not shown live).

    Settings of the view can be changed from Python through it, e.g.
    ``widget_of(r).min_column_width = 400``.
    """
    try:
        return _widgets.get(comparison)
    except TypeError:
        return None


def grid_title(template: str, items: int) -> str:
    """A dataset grid's title: its template's first line (``{input}``, said as written, is
    what every row fills in) and how many items it runs, ``{input} · 4 items``. The widget
    sets it as text; the placeholder escapes it."""
    count = f"{items} item{'' if items == 1 else 's'}"
    return f"{template} · {count}" if template else count


def placeholder_bundle(title: str) -> dict[str, Any]:
    """The static output shown until the run finishes."""
    return {
        "text/plain": f"lmwidgets: running… {title}",
        "text/html": (
            '<div class="lmw-static" style="color:var(--jp-ui-font-color2,#666);font-size:12px">'
            f"lmwidgets: running… {escape_html(title)}</div>"
        ),
        RECORD_MIME: bundle_payload([]),
    }


#: Rules that travel with the static copy of a live view (trusted HTML keeps them; a sanitizer
#: drops them, harmlessly), so that where the widget output right before the copy does not
#: render a live view, the copy stands alone and says what the finished run was:
#:
#: * reopened without its kernel, the widget renderer of JupyterLab and Notebook 7
#:   (@jupyter-widgets/jupyterlab-manager) finds no model, writes "Error displaying widget:
#:   model not found" into that output and gives it the class ``jupyter-widgets`` (it does not
#:   fall back to the output's text/plain);
#: * nbconvert's HTML, without widget state, shows the widget output's text/plain.
#:
#: Only the output right before an lmwidgets copy is matched (the widget output: they are
#: displayed together), and never one that renders a live view.
LIVE_COPY_STYLE = (
    ".jp-OutputArea-child:has(+ .jp-OutputArea-child .lmw-livecopy):not(:has(.lmw-live))"
    ':is(:has(> .jp-OutputArea-output.jupyter-widgets),:has(> [data-mime-type="text/plain"]))'
    "{display:none}"
)


def live_copy(bundle: dict[str, Any]) -> dict[str, Any]:
    """A live view's static copy: ``bundle`` with its HTML marked as the copy of the widget
    output before it (see :data:`LIVE_COPY_STYLE`)."""
    html = bundle.get("text/html")
    if html is None:
        return bundle
    return {
        **bundle,
        "text/html": f'<div class="lmw-livecopy"><style>{LIVE_COPY_STYLE}</style>{html}</div>',
    }


def _tokens(output: Any) -> int:
    count = getattr(output, "n_tokens", None)
    return count if isinstance(count, int) else len(output.token_ids)


# The view ------------------------------------------------------------------------------------


class LiveView:
    """Shows a run live in a notebook and leaves a static copy behind.

    The runner calls :meth:`start`, then :meth:`progress` and :meth:`update_running` (throttled)
    while generating, and :meth:`finish`; :meth:`restart` re-runs in the same view (a region
    drawn on a thumbnail, enabled by :meth:`enable_rerun`).
    """

    def __init__(
        self,
        variants: list[Variant],
        title: str,
        *,
        show: bool = True,
        grid: bool = False,
        columns: str | None = None,
    ) -> None:
        from lmwidgets.notebook.widgets import PromptView

        self.show = show
        self.title = title
        self.grid = grid
        #: The axis that forms the columns (``--columns``, or the user's pick in the view).
        self.columns = columns
        #: The finished run shown (laid out again when the user picks another column axis).
        self._finished: tuple[Comparison, str] | None = None
        self.widget = PromptView(title=title, status="running")
        self._stream: _Stream | None = None
        #: Token entries built so far per (variant, sample): streams only grow, so each push
        #: builds only the new tokens.
        self._token_cache: dict[tuple[int, int], tuple[int, list[list[Any]]]] = {}
        self._set_variants(variants)
        self.widget.set_columns(self._initial_cells())
        self.widget.media = media_data(variants)
        self.widget.media_sources = shared_media(variants)
        self.static_handle = None
        self.displayed = False
        self.widget.on_columns(self.relayout)
        self.ratings = LiveRatings(self)
        self._progress_started: float | None = None

    def _set_variants(self, variants: list[Variant]) -> None:
        self.variants = list(variants)
        self.axes = axes_of(self.variants, self.grid, self.columns)
        self.positions = self.axes.positions
        nrows = max((row for row, _ in self.positions), default=-1) + 1
        self.shown = [i for i, (row, _) in enumerate(self.positions) if row < MAX_GRID_ROWS]
        self.hidden_rows = max(0, nrows - MAX_GRID_ROWS) if self.grid else 0
        self._static: dict[int, dict[str, Any]] = {}
        self.undefined = undefined_notes(self.variants)
        widget = self.widget
        widget.total_items = nrows if self.grid else None
        widget.title = grid_title(self.title, nrows) if self.grid else self.title
        widget.set_layout(self.axes)
        widget.summary = ""
        widget.row_summaries = []
        widget.column_stats = []

    def _static_fields(self, index: int) -> dict[str, Any]:
        """The fields of a cell that do not change while it runs: its prompt and settings."""
        if index not in self._static:
            variant = self.variants[index]
            limit = GRID_PROMPT_LIMIT if self.grid else PROMPT_LIMIT
            earlier = getattr(variant, "precomputed", None)
            self._static[index] = {
                "prompt": _prompt_of(
                    earlier.prompt if earlier else getattr(variant, "prompt_text", "") or "", limit
                ),
                "settings": result_settings(earlier) if earlier else variant_settings(variant),
            }
        return self._static[index]

    def _cell(self, index: int, **kwargs: Any) -> dict[str, Any]:
        from lmwidgets.notebook.widgets import PromptView

        variant = self.variants[index]
        row, col = self.positions[index]
        fields = {**self._static_fields(index), **kwargs}
        fields.setdefault("answerless", asks_its_own_question(variant))
        if self.grid and col == 0 and "media" not in fields:
            fields["media"] = row_media(variant)  # decoded ones only: none before its batch
        return PromptView.column(
            variant.label, row=row, col=col, row_label=variant.input or "", **fields
        )

    def _initial_cells(self) -> list[dict[str, Any]]:
        return [self._waiting_cell(i) for i in self.shown]

    def _waiting_cell(self, index: int) -> dict[str, Any]:
        """A cell before its text arrives (an earlier run's column is shown as it is)."""
        earlier = getattr(self.variants[index], "precomputed", None)
        if earlier is not None:
            return self._final_cell(index, earlier, None)
        return self._cell(index, status="waiting" if self.grid else "running")

    def start(self, stream: _Stream, stop: StopSignal, notes: list[str]) -> None:
        """Display the widget and the static placeholder (once); wire the Stop button."""
        self.widget.reset_stop()
        self.ratings.started()
        self.widget.on_stop(lambda: stop.set("stopped by user"))
        self.widget.run_stats = ""
        self._started = time.monotonic()
        self._stream = stream
        self._token_cache.clear()
        self._static.clear()  # the prompts are rendered now (the runner prepared them)
        self.widget.set_columns(self._initial_cells())
        self.widget.message = "\n".join(self._notes(notes))
        if self.show and not self.displayed:
            from IPython.display import display

            self.displayed = True
            display(self.widget)
            self.static_handle = display(
                live_copy(placeholder_bundle(self.widget.title)), raw=True, display_id=True
            )

    def restart(self, variants: list[Variant]) -> None:
        """Run again in the same view (a re-run with a drawn region): same columns, new text."""
        self._set_variants(variants)
        self._token_cache.clear()
        self._stream = None  # the last run's outputs are indexed by its own columns
        self.ratings.started()
        self.widget.status = "running"
        self.widget.progress = {}
        self.widget.media = media_data(variants)
        self.widget.media_sources = shared_media(variants)
        self.widget.set_columns(self._initial_cells())

    def relayout(self, axis: str) -> None:
        """Lay the finished run out again with ``axis`` forming the columns (the user's pick in
        the view's columns menu): the same results, nothing re-runs; the static copy and
        ``Comparison.columns`` follow."""
        if self._finished is None:
            raise PromptError("the run has not finished yet; pick the columns once it has")
        comparison, message = self._finished
        self.columns = comparison.columns = axis
        # One state message: a view drawing the new headers before the new row headers and
        # cells arrive would show the two layouts mixed for a moment.
        with self.widget.hold_sync():
            self._set_variants(self.variants)
            self.finish(comparison, message)

    def enable_rerun(self, callback: RegionHandler) -> None:
        """Let the user draw a region on a thumbnail and re-run: ``callback(request)``."""
        self.widget.on_region(callback)

    def enable_fork(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Let the user fork a column at a token (a click on an alternative in the token view):
        ``callback(request)`` with ``{'index': i, 'label': label, 'position': p, 'token':
        {'id': id or None, 'text': text}}`` (``'sample': s`` for a multi-sample column):
        continue variant ``self.variants[i]``'s prompt with its first ``p`` generated tokens
        and then ``token``. The callback runs in the kernel when the click arrives (never while
        a run streams); what it raises is shown in the view's message line. It typically adds
        the fork column and runs again in this view (:meth:`restart`)."""

        def forward(request: dict[str, Any]) -> None:
            cell = request["index"]
            index = self.shown[cell] if 0 <= cell < len(self.shown) else cell
            request = {**request, "index": index, "label": self.variants[index].label}
            callback(request)

        self.widget.on_fork(forward)

    def enable_tokens(self, callback: Callable[[], None]) -> None:
        """Let this view get its comparison's token probabilities when it has none (the
        tokens toggle's "get them"): ``callback()`` re-runs the comparison with them in this
        view. Nothing else changes: later runs ask only for what their cell asks."""
        self.widget.on_tokens(callback)

    def _notes(self, notes: list[str]) -> list[str]:
        extra = list(self.undefined)
        if self.hidden_rows:
            extra.append(
                f"The live grid shows the first {MAX_GRID_ROWS} items; {self.hidden_rows} more "
                "are in the results (Comparison.to_pandas())."
            )
        return [*notes, *(note for note in extra if note not in notes)]

    def progress(self, done: int, total: int) -> None:
        """Batches done out of ``total`` (a progress bar for runs of several batches, with
        the count and the time left beside it)."""
        if done == 0 or self._progress_started is None:
            self._progress_started = time.perf_counter()
        if total > 1 or self.grid:
            seconds = time.perf_counter() - self._progress_started
            text = batch_progress(done, total, seconds)
            self.widget.progress = {"done": done, "total": total, "text": text}

    def _sample_tokens(self, index: int, sample: int, output: Any) -> list[list[Any]]:
        """The token entries of one sample (at most MAX_CELL_TOKENS), built once per token."""
        from lmwidgets.notebook.widgets.prompt_view import MAX_CELL_TOKENS

        logprobs = output.logprobs
        owner, built = self._token_cache.get((index, sample), (id(output), []))
        if owner != id(output) or len(built) > len(logprobs):
            built = []  # another row output (a new batch or run)
        if len(built) < min(len(logprobs), MAX_CELL_TOKENS):
            decode = _decoder(getattr(self.variants[index], "engine", None))
            built.extend(token_entry(t, decode) for t in logprobs[len(built) : MAX_CELL_TOKENS])
        self._token_cache[(index, sample)] = (id(output), built)
        return built

    def _stream_tokens(
        self, outputs: Sequence[Any], index: int, answers: Sequence[Any] = ()
    ) -> tuple[list[list[Any]], int]:
        """A cell's token entries from its row outputs (with a separator between samples) and
        how many tokens there are in all."""
        if not any(getattr(o, "logprobs", None) for o in outputs):
            return [], 0
        entries: list[list[Any]] = []
        total = 0
        several = len(outputs) > 1
        for sample, output in enumerate(outputs):
            if several:
                answer = answers[sample] if sample < len(answers) else None
                entries.append(_separator(sample, answer))
                total += 1
            entries.extend(self._sample_tokens(index, sample, output))
            total += len(output.logprobs)
        return entries, total

    def _running_cell(self, stream: _Stream, index: int) -> dict[str, Any]:
        outputs = stream.outputs[index]
        if not outputs:
            return self._waiting_cell(index)
        running = any(o.finish_reason == "running" for o in outputs)
        tokens = sum(_tokens(o) for o in outputs)
        entries, total = self._stream_tokens(outputs, index)
        cached = index in getattr(stream, "cached", ())
        return self._cell(
            index,
            text=stream.live_text(index),
            status="running" if running else outputs[-1].finish_reason,
            stats=f"{tokens} token{'' if tokens == 1 else 's'}" + (" · cached" if cached else ""),
            tokens=entries,
            tokens_total=total,
            cached=cached,
        )

    def update_running(self, stream: _Stream) -> None:
        """Send the columns whose text or status changed (the runner calls this throttled)."""
        cells = [self._running_cell(stream, i) for i in self.shown]
        self._mark_divergence(cells)
        self.widget.stream_columns(cells)

    def _mark_divergence(self, cells: list[dict[str, Any]]) -> None:
        """Set each cell's ``diverge``: where its tokens part from its closest comparable
        column (the same model, the same end of the prompt; one-sample cells with tokens)."""
        keys: list[Any] = []
        for cell, index in zip(cells, self.shown, strict=True):
            tokens = cell.get("tokens") or []
            if not tokens or any(entry[1] is None for entry in tokens):
                keys.append(None)  # no token data, or several samples
                continue
            variant = self.variants[index]
            prompt = getattr(variant, "prompt_text", "") or cell.get("prompt", "")
            keys.append(divergence_key(_model_name(variant), str(prompt)))
        for group in group_by_key(keys):
            streams = [_stream_key(cells[i]["tokens"]) for i in group]
            finished = [cells[i].get("status") not in ("running", "waiting") for i in group]
            for i, found in zip(group, divergences(streams, finished), strict=True):
                if found is not None:
                    position, sibling = found
                    cells[i]["diverge"] = {"at": position, "from": cells[group[sibling]]["label"]}

    def _final_cell(self, index: int, result: Result, group: int | None) -> dict[str, Any]:
        notes = []  # how it ended is the cell's badge, said once
        if result.extras.get("media_error"):
            notes.append(str(result.extras["media_error"]))
        if "agreement" in result.extras:
            votes = result.extras.get("votes", {})
            top = max(votes.values(), default=0)
            notes.append(f"{top}/{len(result.extras.get('samples', []))} samples agree")
        vs = result.extras.get("vs")
        if isinstance(vs, dict):
            notes.append(
                f"answer changed (was {vs.get('previous_answer')!r})"
                if vs.get("answer_changed")
                else "same answer as before"
                if vs.get("text_changed")
                else "same text as before"
            )
        limit = GRID_PROMPT_LIMIT if self.grid else PROMPT_LIMIT
        entries, total = self._final_tokens(index, result)
        confidence, confidence_text = _confidence(result)
        return self._cell(
            index,
            tokens=entries,
            tokens_total=total,
            confidence=confidence,
            confidence_text=confidence_text,
            text=result.extras.get("display_text", result.text),
            answer=result.answer,
            chip=answer_shown(result),
            answerless=asks_its_own_question(result),
            status=result.finish_reason,
            stats=result.stats(),
            note=" · ".join(notes),
            boxes=[box.as_dict() for box in result.boxes],
            group=group,
            correct=result.correct,
            score=result.score,
            compared=result.compared,
            verdict=verdict_words(result),
            expected=result.expected,
            prompt=_prompt_of(result.prompt, limit),
            settings=result_settings(result),
            vs=self._counterpart(result),
            previous=result.record.get("shown_as") == "previous",
            cached=getattr(result, "cached", False),
            badges=axis_badges(result),
            rating=getattr(result, "rating", None),
            judge=getattr(result, "judge", None),
            media=getattr(result, "item_media", []) if self.positions[index][1] == 0 else [],
            choices=choice_bars(result),
            **kind_cells(result),
        )

    def _counterpart(self, result: Result) -> int | None:
        """The cell index of the earlier column ``result`` is compared with (``--vs``)."""
        vs = result.extras.get("vs")
        if not isinstance(vs, dict):
            return None
        labels = [self.variants[i].label for i in self.shown]
        return labels.index(vs["label"]) if vs.get("label") in labels else None

    def _final_tokens(self, index: int, result: Result) -> tuple[list[list[Any]], int]:
        """A finished cell's tokens: ``Result.tokens_detail``, or the streamed row outputs for
        a multi-sample cell (every sample, as its text shows them)."""
        from lmwidgets.notebook.widgets.prompt_view import MAX_CELL_TOKENS

        stream = self._stream
        outputs = stream.outputs[index] if stream is not None else []
        detail = getattr(result, "tokens_detail", None) or []
        if detail and len(outputs) <= 1:
            return [detail_entry(d) for d in detail[:MAX_CELL_TOKENS]], len(detail)
        samples = result.extras.get("samples") or []
        answers = [s.get("answer") if isinstance(s, dict) else None for s in samples]
        return self._stream_tokens(outputs, index, answers)

    def _agreement(self, results: Sequence[Result]) -> tuple[dict[int, int | None], list[str]]:
        """Agreement groups per shown index and one summary per row, and the top line."""
        groups: dict[int, int | None] = {}
        by_row: dict[int, list[int]] = {}
        for index in self.shown:
            by_row.setdefault(self.positions[index][0], []).append(index)
        nrows = max(by_row, default=-1) + 1
        summaries = [""] * nrows
        agreeing = 0
        if not agreement_applies([results[i] for i in self.shown]):
            # Probe attacks, pairwise comparisons: no summary, no marks.
            if self.grid or self.axes.layout == "matrix":
                self.widget.row_summaries = summaries
            return dict.fromkeys(self.shown), [""]
        if self.grid:  # each item is its own question
            for row, indexes in by_row.items():
                found = scored_agreement([results[i] for i in indexes])
                groups.update(zip(indexes, found.groups, strict=True))
                summaries[row] = found.summary
                agreeing += found.all_agree
            ncols = len(self.axes.columns)
            top = (
                f"all columns agree on {agreeing} of {len(by_row)} items"
                if ncols > 1 and by_row
                else ""
            )
            self.widget.row_summaries = summaries
            return groups, [top]
        # One question: every cell of a matrix is compared with every other.
        found = scored_agreement([results[i] for i in self.shown])
        groups.update(zip(self.shown, found.groups, strict=True))
        if self.axes.layout == "matrix":
            for row, indexes in by_row.items():
                summaries[row] = scored_agreement([results[i] for i in indexes]).summary
            self.widget.row_summaries = summaries
        return groups, [found.summary]

    def finish(self, comparison: Comparison, message: str = "") -> None:
        """Show the final texts, answers, stats and scores; fill in the static copy."""
        self._finished = (comparison, message)
        results = comparison.results
        groups, (summary,) = self._agreement(results)
        cells = [self._final_cell(i, results[i], groups.get(i)) for i in self.shown]
        self._mark_divergence(cells)
        self.widget.set_columns(cells)
        spread = [f"Trials: {line}" for line in getattr(comparison, "spread", list)()]
        intervals, paired_line = _header_stats(comparison) if self.grid else ({}, "")
        self.widget.summary = "\n".join(line for line in [summary, paired_line, *spread] if line)
        if self.grid:
            self.widget.column_stats = [
                _column_stats([results[i] for i in self.shown if self.positions[i][1] == col])
                for col in range(len(self.axes.columns))
            ]
        self.widget.score_intervals = intervals
        self.widget.scores = dict(comparison.scores)
        started = getattr(self, "_started", None)
        if getattr(comparison, "seconds", None) is None and started is not None:
            with contextlib.suppress(AttributeError):  # a stand-in without the attribute
                comparison.seconds = time.monotonic() - started
        throughput = getattr(comparison, "throughput", None)
        self.widget.run_stats = throughput() if callable(throughput) else ""
        # Fields left as written are part of what the run was: the static copy says so too.
        comparison.notes.extend(n for n in self.undefined if n not in comparison.notes)
        self.widget.message = "\n".join([message, *self._notes(comparison.notes)]).strip()
        self.widget.status = comparison.status
        with contextlib.suppress(TypeError):  # a stand-in that cannot be weakly referenced
            _widgets[comparison] = self.widget
        self.update_copy(comparison)
        self.ratings.finished(comparison)

    def update_copy(self, comparison: Comparison) -> None:
        """Write ``comparison`` into the static copy (at the end of a run; again when its
        ratings change, so that a saved notebook keeps them)."""
        if self.static_handle is not None:
            self.static_handle.update(live_copy(comparison.mimebundle()), raw=True)


def _header_stats(comparison: Comparison) -> tuple[dict[str, list[float]], str]:
    """A dataset header's accuracy intervals and, with two columns, the paired line
    (:func:`lmwidgets.core.stats.header_stats`); none for a stand-in comparison."""
    from lmwidgets.core.results import Comparison as Real
    from lmwidgets.core.stats import header_stats

    if not isinstance(comparison, Real):
        return {}, ""
    return header_stats(comparison)


def kind_cells(result: Result) -> dict[str, Any]:
    """What each registered axis kind shows in a finished cell, by its cell key (a probe's
    verdict as ``probe``, a structured answer's as ``structured``; see
    :mod:`lmwidgets.core.axis_kinds`); the view bounds them."""
    return {
        kind.key: value(result)
        for kind, value in ((kind, kind.hook("cell_value")) for kind in all_axis_kinds())
        if value is not None
    }
