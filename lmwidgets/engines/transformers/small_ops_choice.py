"""Whether the lean decoding step runs its small operations compiled, chosen by timing steps.

:mod:`.lean_ops` replaces ~27 ATen operations a layer by five compiled loops. Whether that pays
depends on the CPU (how much an ATen call costs after the products flushed its caches), so at
load, in the automatic mode, one decoding step of the model itself (batch 1, a short context)
is timed both ways, back to back, round after round (which goes first alternates); the loops
are used where the median round's ratio says they are :data:`MARGIN` faster, and only where
that step's logits agreed with the ATen step's (to float32 rounding, and the same greedy
token). The decision is cached with the kernels'.

Why the median of paired ratios: one step's time swings by a third from one step to the next
on a small machine (the memory bus is shared), so the best step of each way decided either way
for the default model (ratios 0.90-1.10 over five loads); the ratio of two steps taken back to
back cancels that drift (0.941-0.947 over three loads, 12 rounds).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from lmwidgets.engines.transformers import lean_decode, lean_ops

#: Compiled must be this much faster (the median round's ratio) to be chosen.
MARGIN = 0.03
#: Tokens of context before the timed step.
CONTEXT = 32
#: Timed rounds (each: one step each way) after a warm-up; at least MIN_ROUNDS.
ROUNDS = 12
MIN_ROUNDS = 6
#: Seconds after which no new round starts.
BUDGET_S = 1.5
#: How far the two steps' logits may differ: float32 rounding in other sums, not a bug.
RTOL, ATOL = 1e-3, 1e-4


def measure(model: Any, library: Any, rounds: int = ROUNDS, budget: float = BUDGET_S) -> dict:
    """One decoding step of ``model`` (the lean step installed) both ways: the median times
    (``aten_us``, ``compiled_us``), the median round's ``ratio`` (compiled over ATen), the
    ``rounds``, whether the logits ``agree``, and ``compiled_layers`` of ``lean_layers``; or
    ``{"error": why}`` when a step could not run."""
    import torch

    try:
        with torch.inference_mode():
            return _measured(model, library, rounds, budget)
    except Exception as error:  # a model the probe step does not fit: keep ATen's step
        return {"error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        lean_decode.use_ops(model, None)


def _measured(model: Any, library: Any, rounds: int, budget: float) -> dict:
    import torch
    from transformers import DynamicCache

    vocab = model.config.get_text_config().vocab_size
    device = next(model.parameters()).device
    ids = (torch.arange(CONTEXT, device=device) * 7 + 3).remainder(vocab).unsqueeze(0)
    cache = DynamicCache(config=model.config.get_text_config())
    model(input_ids=ids, past_key_values=cache, use_cache=True)
    token = ids[:, -1:]
    taken = {"calls": 0}
    original = lean_ops.attend

    def step(ops: Any) -> tuple[Any, float]:
        lean_decode.use_ops(model, ops)
        started = time.perf_counter()
        logits = model(input_ids=token, past_key_values=cache, use_cache=True).logits
        seconds = time.perf_counter() - started
        cache.crop(-1)  # the next step sees the same context
        return logits, seconds

    def counted(*args: Any) -> Any:
        taken["calls"] += 1
        return original(*args)

    lean_ops.attend = counted
    try:
        aten, _ = step(None)
        compiled, _ = step(library)
    finally:
        lean_ops.attend = original
    agree = bool(
        torch.allclose(aten, compiled, rtol=RTOL, atol=ATOL)
        and torch.equal(aten[..., -1, :].argmax(-1), compiled[..., -1, :].argmax(-1))
    )
    times: dict[str, list[float]] = {"aten": [], "compiled": []}
    started = time.perf_counter()
    for round_ in range(rounds):
        if round_ >= MIN_ROUNDS and time.perf_counter() - started > budget:
            break
        ways = (("aten", None), ("compiled", library))
        for name, ops in ways if round_ % 2 else ways[::-1]:
            times[name].append(step(ops)[1])
    ratios = [c / a for a, c in zip(times["aten"], times["compiled"], strict=True)]
    return {
        "aten_us": round(statistics.median(times["aten"]) * 1e6, 1),
        "compiled_us": round(statistics.median(times["compiled"]) * 1e6, 1),
        "ratio": round(statistics.median(ratios), 4),
        "rounds": len(ratios),
        "agree": agree,
        "compiled_layers": taken["calls"],
        "lean_layers": lean_decode.lean_layers(model),
    }


def decide(measured: dict, margin: float = MARGIN) -> bool:
    """Compiled where its step ran in every lean layer, agreed and was ``margin`` faster (the
    median round's ratio, else the median times')."""
    try:
        ratio = measured.get("ratio", measured["compiled_us"] / measured["aten_us"])
        faster = ratio < 1 - margin
        everywhere = 0 < measured["compiled_layers"] == measured["lean_layers"]
        return bool(measured["agree"] and everywhere and faster)
    except (KeyError, TypeError):
        return False
