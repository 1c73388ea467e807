"""What ran, as the live view shows it beside each column: the settings that matter, the prompt
(cut), fields left as written, and a dataset column's stats."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lmwidgets.core.layout import _model_name
from lmwidgets.prompting.interpolate import field_names

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

_CANDIDATE = re.compile(r"\{\{|\}\}|\{[^{}\n]*\}")


def _message_text(messages: Sequence[Any]) -> str:
    parts = []
    for message in messages or []:
        content = message.get("content", "") if isinstance(message, dict) else ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(str(content))
    return "\n".join(parts)


def undefined_fields(template: str, prompt: str) -> list[str]:
    """``{name}`` fields of ``template`` that are still in the final ``prompt`` as written:
    names :func:`~lmwidgets.prompting.interpolate.interpolate` would have replaced had they
    been defined (``{{x}}`` is an escaped brace, and braces that are not a field, as in JSON,
    are not reported)."""
    found: list[str] = []
    for match in _CANDIDATE.finditer(template or ""):
        token = match.group(0)
        if token in ("{{", "}}") or token in found:
            continue
        if field_names(token) and token in prompt:
            found.append(token)
    return found


def undefined_notes(variants: Sequence[Any]) -> list[str]:
    """One note per ``{name}`` field left as written in any variant's prompt."""
    tokens: list[str] = []
    for variant in variants:
        prompt = _message_text(getattr(variant, "messages", None) or [])
        for token in undefined_fields(getattr(variant, "template", "") or "", prompt):
            if token not in tokens:
                tokens.append(token)
    return [f"{token} is not defined in the notebook: left as written." for token in tokens]


def _setting_line(
    temperature: Any, top_p: Any, seed: Any, max_tokens: Any, adapter: str, model: str
) -> str:
    parts = [f"temperature {temperature}"]
    if top_p not in (None, 1, 1.0):
        parts.append(f"top-p {top_p}")
    parts.append(f"seed {seed}" if seed is not None else "seed: none (greedy)")
    parts += [f"max tokens {max_tokens}", f"adapter {adapter}", f"model {model}"]
    return " · ".join(parts)


def variant_settings(variant: Any) -> str:
    """The settings that matter for a variant, in one line (before it runs)."""
    settings = getattr(variant, "settings", None)
    max_tokens = getattr(variant, "max_new_tokens", 0) or getattr(settings, "max_new_tokens", "")
    seed = getattr(settings, "seed", None)
    temperature = getattr(settings, "temperature", "")
    if seed is None and temperature:
        seed = "drawn at run time"
    return _setting_line(
        temperature,
        getattr(settings, "top_p", None),
        seed,
        max_tokens,
        getattr(variant, "adapter", None) or "base",
        _model_name(variant),
    )


def result_settings(result: Result) -> str:
    """The settings a result ran with (from its record: the seed actually used)."""
    record = result.record or {}
    generation = record.get("generation") or {}
    model = (record.get("model") or {}).get("name") or result.model
    seed = generation.get("seed")
    if seed is None and generation.get("temperature"):
        seed = "unknown"
    return _setting_line(
        generation.get("temperature", ""),
        generation.get("top_p"),
        seed,
        generation.get("max_new_tokens", ""),
        result.adapter or "base",
        str(model),
    )


def _column_stats(results: Sequence[Result]) -> str:
    """A dataset column's stats in one line (what each cell would otherwise repeat)."""
    if not results:
        return ""
    n = len(results)
    tokens = sum(r.tokens for r in results) / n
    seconds = sum(r.seconds for r in results) / n
    scored = [r.choice_logprobs for r in results if r.choice_logprobs is not None]
    if len(scored) == n:  # given choices, nothing generated: "mean 0 tokens" said nothing
        choices = sum(len(c) for c in scored)
        made = f"{choices} choice{'' if choices == 1 else 's'} scored"
    else:
        made = f"mean {tokens:.0f} tokens"
    parts = [f"{n} item{'' if n == 1 else 's'}", made, f"mean {seconds:.1f} s"]
    firsts = [r.first_token_seconds for r in results if r.first_token_seconds is not None]
    if firsts:
        parts.append(f"first token {min(firsts):.2f} s")
    truncated = sum(r.finish_reason == "length" for r in results)
    if truncated:
        parts.append(f"{truncated} truncated (max tokens)")
    return " · ".join(parts)


def _prompt_of(prompt: str, limit: int) -> str:
    if len(prompt) <= limit:
        return prompt
    return prompt[:limit] + f"\n… {len(prompt) - limit:,} more characters (see Result.prompt)"
