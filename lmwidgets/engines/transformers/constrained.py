"""Constrained decoding inside a batch: each constrained row's logits are masked to the tokens
its grammar allows; free rows are left alone, so free and enforced columns share one batch.

The mask is applied before sampling (so greedy rows pick the best *allowed* token and sampled
rows renormalise over the allowed ones); log-probabilities (``--logprobs``) are read from the
model's raw output, so they stay the model's own distribution. Steps where the mask left a single
token are counted per row as forced (``forced_steps``), and ``step_forced`` says which rows
the current step forced (the token recorder marks those tokens ``forced``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ConstrainedRows:
    """A logits processor: row ``i`` follows ``matchers[i]`` (an llguidance matcher; None: free).

    ``width`` is the prompt width of the batch (tokens beyond it were generated); ``eos`` the
    model's end-of-sequence ids (a row that produced one is finished)."""

    def __init__(self, matchers: Sequence[Any], width: int, eos: set[int]) -> None:
        import llguidance
        import numpy as np

        self.matchers = list(matchers)
        self.width = width
        self.eos = eos
        self.done = [m is None for m in self.matchers]
        self.forced_steps = [0] * len(self.matchers)
        self.step_forced = [False] * len(self.matchers)
        self._executor = llguidance.LLExecutor(num_threads=1) if len(self.matchers) > 1 else None
        self._mask: Any = None
        self._np = np

    def _consume(self, input_ids: Any) -> None:
        """Advance each row's matcher by the token generated at the previous step."""
        if input_ids.shape[1] <= self.width:
            return
        last = input_ids[:, -1].tolist()
        for index, matcher in enumerate(self.matchers):
            if self.done[index]:
                continue
            if last[index] in self.eos or not matcher.consume_token(last[index]):
                self.done[index] = True

    def _fill(self, rows: list[int], words: int) -> Any:
        import llguidance.numpy as llnp

        np = self._np
        if self._mask is None or self._mask.shape[1] != words:
            self._mask = np.zeros((len(self.matchers), words), dtype=np.int32)
        if self._executor is not None:
            pairs = [(self.matchers[i], i) for i in rows]
            llnp.fill_next_token_bitmask_par(self._executor, pairs, self._mask)
        else:
            for i in rows:
                llnp.fill_next_token_bitmask(self.matchers[i], self._mask, i)
        return self._mask

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self._consume(input_ids)
        self.step_forced = [False] * len(self.matchers)
        rows = [i for i, done in enumerate(self.done) if not done]
        if not rows:
            return scores
        vocab = scores.shape[-1]
        mask = self._fill(rows, (vocab + 31) // 32)
        bits = self._np.unpackbits(mask[rows].view(self._np.uint8), axis=1, bitorder="little")
        allowed = torch.from_numpy(bits[:, :vocab].astype(bool)).to(scores.device)
        counts = allowed.sum(dim=1).tolist()
        for index, (row, count) in enumerate(zip(rows, counts, strict=True)):
            if count == 0:  # the grammar failed (it cannot go on): let the row end
                allowed[index, sorted(self.eos)] = True
            elif count == 1:
                self.forced_steps[row] += 1
                self.step_forced[row] = True
        at = torch.tensor(rows, device=scores.device)
        scores = scores.clone()
        scores[at] = scores[at].masked_fill(~allowed, float("-inf"))
        return scores
