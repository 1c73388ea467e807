"""Constraints as llguidance grammars: built, checked and compiled once.

llguidance (Microsoft's constrained-decoding library, the one vLLM and llama.cpp use) was
chosen over xgrammar because it takes every kind of constraint lmwidgets offers as one grammar
(JSON schema, regex, choices and Lark, and grammars nested in grammars, which is how
chain-of-thought keeps free reasoning before a structured answer), because each row of a batch
gets its own matcher (no shared compiled state to match up per batch) and because it computes a
mask in tens of microseconds without a precompiled vocabulary table (measured in
``benchmarks/bench_structured.py``). It is imported lazily: ``import lmwidgets`` does not load it.

Compiling a grammar for a tokenizer is the slow part; :class:`CompiledGrammars` keeps one matcher
per (tokenizer, grammar) and hands out copies, so a schema used again compiles once.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any

from lmwidgets.core.constraints import Constraint
from lmwidgets.errors import ConstraintError

#: The free reasoning before a chain-of-thought's structured answer: any text up to and including
#: the marker, then an optional space.
_COT_WRAPPER = 'start: thinking " "? @answer\nthinking[suffix={marker}]: /(?s:.*)/'


def _inner(constraint: Constraint, compact: bool) -> dict[str, Any]:
    """The llguidance grammar entry of a constraint on its own. ``compact`` JSON has no white
    space between tokens (enforcement: a small model cannot pad its answer with endless new
    lines); checking accepts any white space JSON allows."""
    import llguidance

    if constraint.kind == "json":
        options: Any = {"whitespace_flexible": not compact}
        text = llguidance.LLMatcher.grammar_from_json_schema(constraint.source, overrides=options)
        return dict(json.loads(text)["grammars"][0])
    if constraint.kind == "regex":
        entry = json.loads(llguidance.LLMatcher.grammar_from_regex(constraint.source))
        return {"lark_grammar": entry["grammars"][0]["lark_grammar"]}
    if constraint.kind == "one_of":
        return {"lark_grammar": llguidance.grammar_from("choice", json.dumps(constraint.source))}
    return {"lark_grammar": constraint.source}


def grammar_of(constraint: Constraint, compact: bool = True) -> str:
    """The llguidance grammar (JSON text) enforcing ``constraint`` (``compact``: see
    :func:`_inner`)."""
    inner = _inner(constraint, compact)
    if not constraint.after:
        return json.dumps({"grammars": [inner]})
    wrapper = _COT_WRAPPER.format(marker=json.dumps(constraint.after))
    return json.dumps({"grammars": [{"lark_grammar": wrapper}, {**inner, "name": "answer"}]})


def cot_lark(constraint: Constraint) -> str:
    """One Lark grammar for chain-of-thought before a structured answer, for a server that takes
    a single Lark text (vLLM's ``structured_outputs.grammar``, compiled by llguidance): free text
    up to the marker, then the answer inline (``%json`` for a schema, compact; a regex literal;
    the labels as strings). A user's own grammar cannot be inlined (its ``start`` would clash);
    :func:`lmwidgets.engines.served.engine.ServedEngine.check_constraint` refuses it."""
    marker = json.dumps(constraint.after)
    head = f'start: thinking " "? answer\nthinking[suffix={marker}]: /(?s:.*)/\n'
    if constraint.kind == "json":
        schema = dict(constraint.source)
        schema["x-guidance"] = {**schema.get("x-guidance", {}), "whitespace_flexible": False}
        return head + "answer: %json " + json.dumps(schema)
    if constraint.kind == "regex":
        slashed = re.sub(r"(?<!\\)((?:\\\\)*)/", r"\1\\/", constraint.source)
        return head + f"answer: /{slashed}/"
    if constraint.kind == "one_of":
        return head + "answer: " + " | ".join(json.dumps(label) for label in constraint.source)
    raise ConstraintError("A Lark grammar cannot be inlined after a chain-of-thought marker.")


class _Bytes:
    """A byte-level vocabulary (one token per byte), to check a text against a grammar without
    a model's tokenizer."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]

    def __call__(self, text: bytes) -> list[int]:
        return list(text)


@lru_cache(maxsize=1)
def _byte_tokenizer() -> Any:
    import llguidance

    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes()))


def check_constraint(constraint: Constraint) -> None:
    """Raise :class:`ConstraintError` when the constraint cannot be compiled (an invalid schema,
    regex or grammar) or admits no answer at all, naming the option and llguidance's reason."""
    from lmwidgets.core.constraints import KINDS

    option = KINDS[constraint.kind]
    try:
        grammar = grammar_of(constraint)
    except (ValueError, TypeError) as exc:
        raise ConstraintError(f"{option}: {exc}") from None
    import llguidance

    error = llguidance.LLMatcher.validate_grammar(grammar, _byte_tokenizer())
    if error:
        raise ConstraintError(f"{option} cannot be used: {_reason(error)}") from None
    matcher = llguidance.LLMatcher(_byte_tokenizer(), grammar, log_level=0)
    if matcher.is_error():
        raise ConstraintError(f"{option} cannot be used: {matcher.get_error()}")
    if not _allows_a_byte(matcher):
        raise ConstraintError(
            f"{option} {constraint.describe()!r} admits no answer (nothing but the empty text "
            "matches it)."
        )


def _reason(error: str) -> str:
    """llguidance's error in one line. Its first line says where; for a regex it ends in
    "regex parse error:" and the reason ("error: unclosed character class") comes lines later,
    under a drawing of the pattern, so that line is joined to it rather than lost."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    first = lines[0] if lines else error.strip()
    if first.endswith(":"):
        why = next((line for line in lines[1:] if line.startswith("error:")), None)
        if why:
            return f"{first} {why.removeprefix('error:').strip()}"
    return first


def _allows_a_byte(matcher: Any) -> bool:
    import llguidance.numpy
    import numpy as np

    mask = np.full((1, 9), -1, dtype=np.int32)
    llguidance.numpy.fill_next_token_bitmask(matcher, mask, 0)
    bits = np.unpackbits(mask[0].view(np.uint8), bitorder="little")
    return bool(bits[:256].any())


def text_matches(constraint: Constraint, text: str) -> bool:
    """Whether ``text`` (the constrained part of an answer) satisfies ``constraint`` exactly as
    the enforced columns are generated, so a free column's ``valid`` means what enforcement
    guarantees."""
    import llguidance

    grammar = _grammar_by_key(_key(constraint, False), constraint, False)
    matcher = llguidance.LLMatcher(_byte_tokenizer(), grammar, log_level=0)
    data = list(text.encode("utf-8"))
    return matcher.try_consume_tokens(data) == len(data) and matcher.is_accepting()


_GRAMMARS: dict[str, str] = {}


def _grammar_by_key(key: str, constraint: Constraint, compact: bool = True) -> str:
    if key not in _GRAMMARS:
        _GRAMMARS[key] = grammar_of(constraint, compact)
    return _GRAMMARS[key]


def _key(constraint: Constraint, compact: bool = True) -> str:
    return json.dumps(
        [constraint.kind, constraint.source, constraint.after, compact], sort_keys=True
    )


class CompiledGrammars:
    """Matchers compiled for one tokenizer, one per grammar: a grammar compiles once and each
    row gets a fresh copy (``deep_copy`` is cheap), across runs of the same schema."""

    def __init__(self, tokenizer: Any, eos: Any = None, n_vocab: int | None = None) -> None:
        self._hf_tokenizer = tokenizer
        self._eos = sorted(eos) if eos else None
        self._n_vocab = n_vocab
        self._tokenizer: Any = None
        self._matchers: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: How many grammars were compiled (the benchmark checks that re-runs compile none).
        self.compiled = 0

    def tokenizer(self) -> Any:
        """The llguidance view of the model's tokenizer (made on first use, about a second)."""
        if self._tokenizer is None:
            import llguidance.hf

            try:
                self._tokenizer = llguidance.hf.from_tokenizer(
                    self._hf_tokenizer, n_vocab=self._n_vocab, eos_token=self._eos
                )
            except ValueError as exc:
                raise ConstraintError(
                    f"This model's tokenizer cannot enforce constraints ({exc})."
                ) from None
        return self._tokenizer

    def matcher(self, constraint: Constraint) -> Any:
        """A fresh matcher for ``constraint`` (compiled on first use of its grammar)."""
        import llguidance

        key = _key(constraint)
        with self._lock:
            template = self._matchers.get(key)
            if template is None:
                grammar = _grammar_by_key(key, constraint)
                template = llguidance.LLMatcher(self.tokenizer(), grammar, log_level=0)
                if template.is_error():
                    raise ConstraintError(
                        f"{constraint.describe()} cannot be used: {template.get_error()}"
                    )
                self._matchers[key] = template
                self.compiled += 1
        return template.deep_copy()
