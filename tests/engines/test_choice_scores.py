"""Scoring given choices on a tiny Llama: the batched shared-prompt passes against whole
sequences scored one by one, adapters per row, lm-eval's pairing, and the scripted scores."""

import math

import pytest
from tiny_models import build_llama, build_lora

from lmwidgets.engines.choices import (
    ChoiceRequest,
    acc_norm_pick,
    acc_pick,
    probabilities,
    split_pair,
)
from lmwidgets.engines.scripted import ScriptedEngine, scripted_choice_score


def _reference(engine, context: str, choice: str, adapter=None) -> float:
    """The log-probability of ``choice`` after ``context``, one whole sequence, no batching."""
    import torch

    from lmwidgets.engines.transformers.adapters import generation_model
    from lmwidgets.engines.transformers.choices import pair_tokens
    from lmwidgets.engines.transformers.lora_batch import routed

    head, tail = pair_tokens(engine.tokenizer, context, choice)
    ids = torch.tensor([head + tail])
    model = generation_model(engine)
    names = [adapter] if adapter else []
    with torch.inference_mode(), routed(model, names, [adapter]) if engine.adapters else _null():
        logits = model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[len(head) - 1 + i, t]) for i, t in enumerate(tail))


def _null():
    import contextlib

    return contextlib.nullcontext()


def _requests(engine, prompts, choices, adapters=None):
    adapters = adapters or [None] * len(prompts)
    return [
        ChoiceRequest(engine.render([{"role": "user", "content": p}]), tuple(c), a)
        for p, c, a in zip(prompts, choices, adapters, strict=True)
    ]


PROMPTS = ["The capital of France is", "Two plus two is", "Say a colour"]
CHOICES = [["Paris", "Lyon", "Marseille and more words"], ["four", "5"], ["red", "blue", "a"]]


def test_batched_scores_equal_whole_sequences_one_by_one(tiny):
    requests = _requests(tiny, PROMPTS, CHOICES)
    together = tiny.score_choices(requests)
    for request, scores in zip(requests, together, strict=True):
        assert len(scores) == len(request.choices)
        for choice, score in zip(request.choices, scores, strict=True):
            expected = _reference(tiny, request.prompt.text, choice)
            assert score.logprob == pytest.approx(expected, abs=1e-4)
            assert score.n_tokens >= 1 and score.logprob < 0
    alone = [tiny.score_choices([r])[0] for r in requests]
    for a, b in zip(alone, together, strict=True):
        assert [s.logprob for s in a] == pytest.approx([s.logprob for s in b], abs=1e-4)


def test_whole_sequence_fallback_gives_the_same_numbers(tiny):
    from lmwidgets.engines.transformers.adapters import generation_model
    from lmwidgets.engines.transformers.choices import _pairs, _whole_sequences

    requests = _requests(tiny, PROMPTS, CHOICES)
    shared = [s.logprob for scores in tiny.score_choices(requests) for s in scores]
    whole = _whole_sequences(generation_model(tiny), tiny, _pairs(tiny, requests))
    assert [s.logprob for s in whole] == pytest.approx(shared, abs=1e-4)


def test_the_prompt_is_computed_once_per_batch(tiny):
    calls = []
    handle = tiny.model.register_forward_hook(
        lambda m, a, k, o: calls.append(k["input_ids"].shape), with_kwargs=True
    )
    try:
        tiny.score_choices(_requests(tiny, PROMPTS, CHOICES))
    finally:
        handle.remove()
    # one pass over the three prompts, one over all eight choices
    assert [shape[0] for shape in calls] == [3, 8]


def test_adapters_route_per_request(tiny, tmp_path, tiny_dir):
    from lmwidgets.engines.transformers.adapters import load_adapter

    load_adapter(tiny, build_lora(tiny_dir, tmp_path / "a1", seed=1), name="a1")
    prompts, choices = [PROMPTS[0], PROMPTS[0]], [CHOICES[0], CHOICES[0]]
    base, adapted = tiny.score_choices(_requests(tiny, prompts, choices, [None, "a1"]))
    assert [s.logprob for s in base] != pytest.approx([s.logprob for s in adapted], abs=1e-3)
    context = tiny.render([{"role": "user", "content": PROMPTS[0]}]).text
    for choice, score in zip(CHOICES[0], adapted, strict=True):
        assert score.logprob == pytest.approx(_reference(tiny, context, choice, "a1"), abs=1e-4)
    for choice, score in zip(CHOICES[0], base, strict=True):
        assert score.logprob == pytest.approx(_reference(tiny, context, choice), abs=1e-4)


def test_plain_model_and_a_leading_space(registry, tmp_path):
    import lmwidgets

    plain = lmwidgets.load_model(str(build_llama(tmp_path / "plain", chat=False)), name="plain")
    rendered = plain.render([{"role": "user", "content": "Question: capital? Answer:"}])
    (scores,) = plain.score_choices([ChoiceRequest(rendered, (" Paris", " Lyon"))])
    for choice, score in zip((" Paris", " Lyon"), scores, strict=True):
        assert score.logprob == pytest.approx(_reference(plain, rendered.text, choice), abs=1e-4)


def test_lm_eval_pairing_moves_trailing_whitespace():
    assert split_pair("Answer:\n", "Paris") == ("Answer:", "\nParis")
    assert split_pair("Answer: ", " x") == ("Answer:", "  x")
    assert split_pair("Answer:", " Paris") == ("Answer:", " Paris")


def test_picks_follow_lm_eval():
    logprobs = [-3.0, -4.0, -3.0]
    assert acc_pick(logprobs) == 0  # ties: the first
    # per character: -3/1 = -3, -4/8 = -0.5, -3/2 = -1.5
    assert acc_norm_pick(logprobs, ["a", "abcdefgh", "ab"]) == 1
    probs = probabilities([math.log(0.2), math.log(0.6)])
    assert probs == pytest.approx([0.25, 0.75])


def test_scripted_scores_are_deterministic_and_prefer_the_answer():
    engine = ScriptedEngine(replies={"France": "Paris"}, adapters={"loud": str.upper})
    requests = _requests(engine, ["France?", "France?"], [["Lyon", "Paris"]] * 2, [None, "loud"])
    base, loud = engine.score_choices(requests)
    assert base[1].logprob > base[0].logprob and base[1].greedy
    assert loud[1].logprob < 0 and not loud[1].greedy  # the adapter answers PARIS
    again = engine.score_choices(requests)
    assert [s.logprob for s in again[0]] == [s.logprob for s in base]
    assert scripted_choice_score("p", "a b", "a b").logprob == pytest.approx(2 * math.log(0.8))
