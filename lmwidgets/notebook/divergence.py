"""Where token streams part ways: the first position at which columns that started alike differ.

Columns are comparable when they ran on the same model and their prompts end the same way
(:func:`divergence_key`: the model and the last :data:`PROMPT_TAIL` characters of the rendered
prompt, so the generation starts from the same place, e.g. the same question under two
adapters, the samples of one prompt, or a fork and the column it forked from).
:func:`group_by_key` gathers them, and :func:`divergences` says, for each stream of a group,
where it departs from its closest sibling (the one it shares the longest start with) and which
one that is. Streams are lists of token ids or token texts; the functions are pure.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

#: How many characters at the end of two prompts must match for their columns to be compared.
PROMPT_TAIL = 200

Token = str | int | None


def divergence_key(model: str, prompt: str, tail: int = PROMPT_TAIL) -> tuple[str, str]:
    """What columns must share to be compared: their model and the end of their prompt."""
    return (model, prompt[-tail:] if tail else prompt)


def group_by_key(keys: Sequence[Hashable | None]) -> list[list[int]]:
    """Indexes sharing a key, in order of first appearance; groups of one and None are left out."""
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(index)
    return [indexes for indexes in groups.values() if len(indexes) > 1]


def common_prefix(a: Sequence[Token], b: Sequence[Token]) -> int:
    """How many tokens ``a`` and ``b`` share at their start."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def divergences(
    streams: Sequence[Sequence[Token]], finished: Sequence[bool] | None = None
) -> list[tuple[int, int] | None]:
    """For each stream, ``(position, sibling)``: the first position at which it differs from
    its closest sibling (the other stream it shares the longest start with; the first such one
    on ties), or None when it equals every other stream.

    A stream that ended where a longer sibling goes on diverges at its end (``position ==
    len(stream)``). With ``finished`` (one flag per stream; default: all finished) a stream
    that is still growing is not yet said to diverge from one it is a start of.
    """
    done = list(finished) if finished is not None else [True] * len(streams)
    found: list[tuple[int, int] | None] = []
    for i, a in enumerate(streams):
        best: tuple[int, int] | None = None
        for j, b in enumerate(streams):
            if i == j:
                continue
            shared = common_prefix(a, b)
            if shared == len(a) == len(b):
                continue  # identical so far
            if (shared == len(a) and not done[i]) or (shared == len(b) and not done[j]):
                continue  # one is a start of the other, which may still catch up
            if best is None or shared > best[0]:
                best = (shared, j)
        found.append(best)
    return found


def first_divergence(
    streams: Sequence[Sequence[Token]], finished: Sequence[bool] | None = None
) -> list[int | None]:
    """The first position at which each stream differs from its closest sibling (None: it
    equals every other one); see :func:`divergences`."""
    return [None if d is None else d[0] for d in divergences(streams, finished)]
