"""Per-token log-probabilities and forced answer starts (forks) for batched generation.

Log-probabilities are those of the model's own distribution: ``log_softmax`` (float32) of the
logits the model returned at each step, read by a forward hook on the model before any logits
processor, so before temperature, top-p, repetition penalties or the greedy one-hot of mixed
batches. That makes greedy and sampled rows comparable, and matches what vLLM reports by default
(its ``raw_logprobs``). Per step it costs one ``log_softmax`` and one ``topk`` on the device,
and only ``K + 1`` values per row cross to the host; no step keeps a whole vocabulary beyond the
moment its token is chosen.

Token texts are decoded incrementally, as vLLM does: a token's text is what it adds to the
decoded answer, so the texts of a row concatenate to its decoded text. A token holding only part
of a multi-byte character carries ``""``; the token that completes it carries the character.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.base import RowOutput, TokenLogprob

#: One decoding step as host lists: per row ``[chosen, top...]`` log-probabilities, the top
#: ids, and which rows a constraint forced (None without one).
Step = tuple[list[list[float]], list[list[int]], list[bool] | None]


class _Detokenizer:
    """Incremental decoding of one row: each new token's piece of the decoded text.

    Keeps two offsets into the row's tokens (vLLM's ``detokenize_incrementally``): the text of
    ``ids[prefix:read]`` is already out; the text of ``ids[prefix:]`` minus it is the new piece,
    held back (``""``) while it ends in an unfinished character.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.prefix = 0
        self.read = 0

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def piece(self, ids: Sequence[int]) -> str:
        """The text the last of ``ids`` adds to the decoded text of all of them."""
        before = self._decode(ids[self.prefix : self.read])
        after = self._decode(ids[self.prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self.prefix = self.read
        self.read = len(ids)
        return after[len(before) :]


class TokenRecorder:
    """Records each generated token's log-probability and top-``k`` alternatives.

    Three hooks into ``model.generate``: a forward hook (:meth:`_on_logits`) takes the step's
    raw logits; a stopping criterion (:meth:`criterion`), called right after the step's tokens
    were chosen, gathers the chosen tokens' log-probabilities and queues ``k + 1`` values per row;
    the streamer hands each step's tokens to :meth:`record`, which takes the oldest queued step
    (transformers may hand tokens to the streamer a step late, and may run one step more than it
    reports, so this is a queue). With a constraint (``constrained``, the batch's
    :class:`~lmwidgets.engines.transformers.constrained.ConstrainedRows`), each step also queues
    which rows the mask forced, and their tokens are marked ``forced``.
    """

    def __init__(self, tokenizer: Any, k: int, n_rows: int) -> None:
        self.tokenizer = tokenizer
        self.k = k
        self._current: Any = None  # this step's log-probabilities, until its tokens are chosen
        self._top: Any = None
        self._steps: deque[tuple[Any, Any, list[bool] | None]] = deque()
        self.constrained: Any = None
        self._texts: dict[int, str] = {}
        self._rows = [_Detokenizer(tokenizer) for _ in range(n_rows)]

    def _on_logits(self, module: Any, args: Any, output: Any) -> None:
        logits = getattr(output, "logits", None)
        if logits is None:
            return
        logprobs = logits[:, -1].float().log_softmax(dim=-1)
        self._current = logprobs
        self._top = logprobs.topk(self.k, dim=-1)

    def criterion(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        """A stopping criterion that never stops: it queues the step just decided."""
        import torch

        if self._current is not None:
            chosen = self._current.gather(1, input_ids[:, -1:])
            values, ids = self._top
            forced = None if self.constrained is None else list(self.constrained.step_forced)
            self._steps.append((torch.cat([chosen, values], dim=1), ids, forced))
            self._current = self._top = None
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def attach(self, model: Any) -> Any:
        """Start watching ``model``'s forward passes; returns the hook handle (remove it after)."""
        target = model.get_base_model() if hasattr(model, "get_base_model") else model
        return target.register_forward_hook(self._on_logits)

    def take_step(self) -> Step | None:
        """The oldest queued step as host lists: per row ``[chosen, top...]``, top ids and
        whether the constraint forced the row's token (None: no constraint)."""
        if not self._steps:
            return None
        values, ids, forced = self._steps.popleft()
        return values.tolist(), ids.tolist(), forced

    def _text(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = str(self.tokenizer.decode([token]))
        return text

    def record(self, index: int, output: RowOutput, step: Step) -> None:
        """Append the log-probability of ``output``'s newest token (row ``index`` of ``step``)."""
        values, ids, forced = step
        token = output.token_ids[-1]
        top = tuple(
            (i, self._text(i), v) for i, v in zip(ids[index], values[index][1:], strict=True)
        )
        text = self._rows[index].piece(output.token_ids)
        marked = bool(forced and forced[index])
        output.logprobs.append(TokenLogprob(token, text, values[index][0], top, marked))


def complete_texts(tokenizer: Any, outputs: Sequence[RowOutput]) -> None:
    """Give a row's last token what decoding held back (an unfinished character at the end), so
    that every row's token texts concatenate to its decoded text."""
    for output in outputs:
        if not output.logprobs or len(output.logprobs) != len(output.token_ids):
            continue
        full = str(tokenizer.decode(output.token_ids, skip_special_tokens=True))
        joined = "".join(t.text or "" for t in output.logprobs)
        if full != joined and full.startswith(joined):
            last = output.logprobs[-1]
            output.logprobs[-1] = dataclasses.replace(
                last, text=(last.text or "") + full[len(joined) :]
            )


class ForcedStart:
    """A logits processor that makes rows begin with given tokens (a fork at a token).

    Row ``i`` takes ``forced[i][s]`` at step ``s`` whatever the model prefers: every other token
    is masked, so greedy and sampled rows alike pick it. The forced tokens run through the model
    one step each, like generated ones, so their log-probabilities are the model's, and the
    rest of the answer continues from them.
    """

    def __init__(self, forced: Sequence[Sequence[int]], width: int) -> None:
        self.width = width
        self.by_step: dict[int, tuple[list[int], list[int]]] = {}
        for row, tokens in enumerate(forced):
            for step, token in enumerate(tokens):
                rows, ids = self.by_step.setdefault(step, ([], []))
                rows.append(row)
                ids.append(int(token))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        forced = self.by_step.get(input_ids.shape[1] - self.width)
        if forced is None:
            return scores
        rows = torch.tensor(forced[0], device=scores.device)
        ids = torch.tensor(forced[1], device=scores.device)
        scores = scores.clone()
        scores[rows] = float("-inf")
        scores[rows, ids] = 0.0
        return scores
