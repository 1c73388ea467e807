"""Given choices: scoring with each prompt computed once vs every (prompt, choice) sequence whole.

``python benchmarks/choices.py [--quick] [--items N] [--repeats R]``

**Shared prompt vs whole sequences**: N few-shot multiple-choice prompts (a long shared prefix
of worked examples, then the question) with 4 choices each, scored in one batch by lmwidgets'
transformers engine (the prompts once, then all choices in one pass attending to their prompt's
cache) and by the way lm-evaluation-harness scores them (every prompt+choice sequence whole,
right-padded, one forward pass), interleaved, best of R. Target: lmwidgets <= 0.6x the time.
Output check: every choice's log-probability equal within 1e-3, the same ``acc`` picks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

EXAMPLES = [
    ("What is the capital of Italy?", "Rome"),
    ("What is the largest ocean on Earth?", "The Pacific Ocean"),
    ("Which gas do plants take in from the air?", "Carbon dioxide"),
    ("How many days are there in a leap year?", "366"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare"),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees"),
]
QUESTIONS = [
    ("What is the capital of France?", ["Paris", "Lyon", "Marseille", "Nice"]),
    ("What is the opposite of hot?", ["cold", "warm", "the sun", "ice cream"]),
    ("How many legs does a spider have?", ["eight", "six", "four", "ten"]),
    ("Which planet is known as the red planet?", ["Mars", "Venus", "Jupiter", "Saturn"]),
    ("What colour is the sky on a clear day?", ["blue", "green", "red", "yellow"]),
    ("What do bees make?", ["honey", "milk", "silk", "wax paper"]),
    ("What is frozen water called?", ["ice", "steam", "fog", "rain"]),
    ("Which animal says moo?", ["a cow", "a cat", "a dog", "a duck"]),
]


def _requests(engine, n_items: int):
    from lmwidgets.engines.choices import ChoiceRequest

    turns = []
    for question, answer in EXAMPLES:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    requests = []
    for index in range(n_items):
        question, choices = QUESTIONS[index % len(QUESTIONS)]
        rendered = engine.render([*turns, {"role": "user", "content": question}])
        requests.append(ChoiceRequest(rendered, tuple(choices)))
    return requests


def _whole(engine, requests):
    """lm-eval's way: every (prompt, choice) sequence whole, right-padded, one pass."""
    from lmwidgets.engines.transformers.adapters import generation_model
    from lmwidgets.engines.transformers.choices import _pairs, _whole_sequences

    scores = _whole_sequences(generation_model(engine), engine, _pairs(engine, requests))
    width = len(requests[0].choices)
    return [scores[i : i + width] for i in range(0, len(scores), width)]


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def bench_shared_prompt(engine, n_items: int, repeats: int) -> dict:
    from lmwidgets.engines.choices import acc_pick

    requests = _requests(engine, n_items)
    engine.score_choices(requests[:1])  # warm up both paths
    _whole(engine, requests[:1])
    ours, theirs = [], []
    for _ in range(repeats):
        seconds, shared = _timed(engine.score_choices, requests)
        ours.append(seconds)
        seconds, whole = _timed(_whole, engine, requests)
        theirs.append(seconds)
    ratio = min(ours) / min(theirs)
    close = all(
        abs(a.logprob - b.logprob) <= 1e-3
        for row_a, row_b in zip(shared, whole, strict=True)
        for a, b in zip(row_a, row_b, strict=True)
    )
    picks = [acc_pick([s.logprob for s in row]) for row in shared]
    same_picks = picks == [acc_pick([s.logprob for s in row]) for row in whole]
    prompt_tokens = requests[0].prompt.n_tokens
    return {
        "benchmark": (
            f"{n_items} prompts ({prompt_tokens} tokens) x 4 choices: shared prompt vs whole "
            "sequences (s)"
        ),
        "baseline": round(min(theirs), 4),
        "lmwidgets": round(min(ours), 4),
        "ratio": round(ratio, 3),
        "target": "<= 0.6",
        "met": ratio <= 0.6,
        "outputs ok": close and same_picks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A tiny random model (CI).")
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from run import _load

    engine = _load(args.quick)
    row = bench_shared_prompt(engine, args.items, args.repeats)
    print(" | ".join(f"{k}: {v}" for k, v in row.items()))
    return 0 if row["outputs ok"] and (row["met"] or args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
