"""Structured answers: what enforcing a constraint costs while decoding, side by side in one run.

``python benchmarks/structured.py [--quick] [--tokens N] [--repeats R]``

1. **Enforced vs free, 4 columns**: the same 4 prompts generate exactly N tokens each
   (``ignore_eos``) in one batch, free and then with a JSON schema enforced on every row
   (an array of records long enough that it cannot close within N tokens), interleaved, best of
   R. Target: enforced time per token <= 1.25x free. Output check: every enforced row's tokens
   are accepted by its grammar; free rows are unconstrained (at least one breaks it).
2. **Grammar compilation cached**: compiling the schema for the model's tokenizer the first time
   vs getting a matcher for it again (a later run of the same schema). Check: one compilation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SCHEMA = {
    "type": "array",
    "minItems": 60,
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    },
}
PROMPTS = [
    "List people as JSON.",
    "Give a JSON array of people with names and ages.",
    "Write JSON: people and their ages.",
    "Output a list of persons (name, age) in JSON.",
]


def _rows(engine, constraint):
    from lmwidgets.engines.base import PromptRow

    return [
        PromptRow(engine.render([{"role": "user", "content": p}]), constraint=constraint)
        for p in PROMPTS
    ]


def _generate(engine, rows, n_tokens):
    from lmwidgets.engines.base import GenerationSettings, StopSignal

    started = time.perf_counter()
    outcome = engine.generate(
        rows, GenerationSettings(max_new_tokens=n_tokens), stop=StopSignal(), ignore_eos=True
    )
    seconds = time.perf_counter() - started
    tokens = sum(len(o.token_ids) for o in outcome.outputs)
    return seconds / max(tokens, 1), outcome.outputs


def _accepted(engine, constraint, token_ids) -> bool:
    matcher = engine._grammars().matcher(constraint)
    return matcher.try_consume_tokens(list(token_ids)) == len(token_ids)


def bench_enforced_vs_free(engine, n_tokens: int, repeats: int) -> dict:
    from lmwidgets.core.constraints import Constraint

    constraint = Constraint("json", SCHEMA)
    engine.check_constraint(constraint)  # compiled once, outside the timing
    free_rows, enforced_rows = _rows(engine, None), _rows(engine, constraint)
    _generate(engine, free_rows, 4)  # warm up both paths
    _generate(engine, enforced_rows, 4)
    free, enforced = [], []
    for _ in range(repeats):
        per_token, free_out = _generate(engine, free_rows, n_tokens)
        free.append(per_token)
        per_token, enforced_out = _generate(engine, enforced_rows, n_tokens)
        enforced.append(per_token)
    ratio = min(enforced) / min(free)
    same_length = all(len(o.token_ids) == n_tokens for o in [*free_out, *enforced_out])
    valid = all(_accepted(engine, constraint, o.token_ids) for o in enforced_out)
    free_breaks = not all(_accepted(engine, constraint, o.token_ids) for o in free_out)
    return {
        "benchmark": f"4 columns x {n_tokens} tokens: enforced JSON schema vs free (s/token)",
        "baseline": round(min(free), 5),
        "lmwidgets": round(min(enforced), 5),
        "ratio": round(ratio, 3),
        "target": "<= 1.25",
        "met": ratio <= 1.25,
        "outputs ok": same_length and valid and free_breaks,
    }


def bench_compile_cache(engine) -> dict:
    from lmwidgets.core.constraints import Constraint
    from lmwidgets.engines.grammar import CompiledGrammars

    grammars = CompiledGrammars(engine.tokenizer)
    grammars.tokenizer()  # the tokenizer conversion is a one-off per model, not per schema
    constraint = Constraint("json", {**SCHEMA, "minItems": 3})
    started = time.perf_counter()
    grammars.matcher(constraint)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = Constraint("json", {**SCHEMA, "minItems": 3})  # the same schema, a new run
    grammars.matcher(again)
    second = time.perf_counter() - started
    return {
        "benchmark": "grammar for a JSON schema: first compile vs the same schema again (s)",
        "baseline": round(first, 5),
        "lmwidgets": round(second, 5),
        "ratio": round(second / first, 4),
        "target": "compiled once",
        "met": grammars.compiled == 1,
        "outputs ok": grammars.compiled == 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A tiny random model (CI).")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from run import _load

    engine = _load(args.quick)
    rows = [bench_enforced_vs_free(engine, args.tokens, args.repeats), bench_compile_cache(engine)]
    for row in rows:
        print(" | ".join(f"{k}: {v}" for k, v in row.items()))
    if not all(row["met"] and row["outputs ok"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
