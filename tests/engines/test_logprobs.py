"""Per-token log-probabilities and forced starts (forks) on a tiny real Llama.

Every reported number is checked against a reference: the model run forward once on the prompt
plus the generated tokens, ``log_softmax`` of its logits at each answer position.
"""

import contextlib

import pytest
from tiny_models import build_lora

from lmwidgets.engines.base import GenerationSettings, PromptRow, StopSignal
from lmwidgets.engines.transformers import lora_batch
from lmwidgets.engines.transformers.adapters import generation_model, load_adapter
from lmwidgets.engines.transformers.chat import encode, render_text
from lmwidgets.engines.transformers.generation import Row, generate_batch

TOLERANCE = 1e-4
PROMPTS = ["Hi", "What is the capital of France? Think step by step.", "Zwölf 東京 🚀"]


def _ids(loaded, text):
    return encode(
        loaded.tokenizer, render_text(loaded.tokenizer, [{"role": "user", "content": text}])
    )


def _reference(model, prompt, answer, adapter=None):
    """Per answer token: the log-probabilities over the vocabulary at its position, from one
    forward pass over prompt + answer (batch 1, no padding, no cache)."""
    import torch

    route = (
        lora_batch.routed(model, [adapter] if adapter else [], [adapter])
        if hasattr(model, "get_base_model")
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), route:
        logits = model(torch.tensor([list(prompt) + list(answer)])).logits[0].float()
    logprobs = logits.log_softmax(dim=-1)
    return [logprobs[len(prompt) - 1 + i] for i in range(len(answer))]


def _check_against_reference(model, row, output, k, greedy):
    import torch

    assert len(output.logprobs) == len(output.token_ids) > 0
    reference = _reference(model, row.input_ids, output.token_ids, row.adapter)
    for token, entry, expected in zip(output.token_ids, output.logprobs, reference, strict=True):
        assert entry.id == token
        assert entry.logprob == pytest.approx(expected[token].item(), abs=TOLERANCE)
        values = [value for _, _, value in entry.top]
        assert len(entry.top) == k and values == sorted(values, reverse=True)
        top_values, top_ids = expected.topk(k)
        assert values == pytest.approx(top_values.tolist(), abs=TOLERANCE)
        assert {i for i, _, _ in entry.top} == set(top_ids.tolist()) or torch.allclose(
            top_values[-2:], top_values[-1:], atol=TOLERANCE
        )  # a tie at the K-th place may pick either token
        if greedy:
            assert entry.top[0][0] == token
            assert entry.logprob == pytest.approx(values[0], abs=TOLERANCE)


def test_logprobs_equal_a_forward_pass_for_greedy_and_sampled_rows(tiny):
    rows = [
        Row(_ids(tiny, PROMPTS[0])),
        Row(_ids(tiny, PROMPTS[1]), temperature=1.0),
        Row(_ids(tiny, PROMPTS[2]), temperature=0.7, top_p=0.9),
    ]
    settings = GenerationSettings(max_new_tokens=12, logprobs=5, seed=3)
    outcome = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    for row, output in zip(rows, outcome.outputs, strict=True):
        _check_against_reference(tiny.model, row, output, 5, greedy=not row.temperature)


def test_logprobs_follow_each_rows_adapter(tiny, tiny_dir, tmp_path):
    load_adapter(tiny, build_lora(tiny_dir, tmp_path / "x", seed=1), name="x")
    model = generation_model(tiny)
    ids = _ids(tiny, PROMPTS[1])
    rows = [Row(ids), Row(ids, "x"), Row(ids, "x", temperature=1.0)]
    settings = GenerationSettings(max_new_tokens=10, logprobs=3, seed=5)
    outcome = generate_batch(model, tiny.tokenizer, rows, settings, route_adapters=True)
    for row, output in zip(rows, outcome.outputs, strict=True):
        _check_against_reference(model, row, output, 3, greedy=not row.temperature)
    base, adapted = outcome.outputs[0].logprobs[0], outcome.outputs[1].logprobs[0]
    assert base.logprob != pytest.approx(adapted.logprob, abs=TOLERANCE)  # really routed


def test_no_logprobs_unless_asked_and_same_tokens_either_way(tiny):
    rows = [Row(_ids(tiny, p)) for p in PROMPTS]
    off = generate_batch(tiny.model, tiny.tokenizer, rows, GenerationSettings(max_new_tokens=10))
    on = generate_batch(
        tiny.model, tiny.tokenizer, rows, GenerationSettings(max_new_tokens=10, logprobs=1)
    )
    assert all(o.logprobs == [] for o in off.outputs)
    assert [o.token_ids for o in on.outputs] == [o.token_ids for o in off.outputs]
    assert all(len(o.top) == 1 for out in on.outputs for o in out.logprobs)


def test_forced_start_then_the_greedy_continuation(tiny):
    prompt = _ids(tiny, PROMPTS[1])
    free = generate_batch(
        tiny.model, tiny.tokenizer, [Row(prompt)], GenerationSettings(max_new_tokens=6)
    ).outputs[0]
    forced = (free.token_ids[0], 42, 7)  # the model's own first token, then two it did not pick
    rows = [Row(prompt), Row(prompt, forced=forced), Row(_ids(tiny, "Hi"), forced=(9,))]
    settings = GenerationSettings(max_new_tokens=10, logprobs=4)
    outcome = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    output = outcome.outputs[1]
    assert tuple(output.token_ids[:3]) == forced and outcome.outputs[2].token_ids[0] == 9
    # The continuation is what greedy decoding gives for prompt + forced tokens.
    rest = generate_batch(
        tiny.model,
        tiny.tokenizer,
        [Row(list(prompt) + list(forced))],
        GenerationSettings(max_new_tokens=7),
    ).outputs[0]
    assert output.token_ids[3:] == rest.token_ids
    # Forced tokens carry the model's own log-probabilities at their positions.
    reference = _reference(tiny.model, prompt, output.token_ids)
    for token, entry, expected in zip(output.token_ids, output.logprobs, reference, strict=True):
        assert entry.logprob == pytest.approx(expected[token].item(), abs=TOLERANCE)
    assert output.logprobs[1].top[0][0] != 42  # forced against the model's preference
    assert outcome.outputs[0].token_ids[:6] == free.token_ids  # other rows unaffected


def test_forced_start_in_a_sampled_row(tiny):
    rows = [Row(_ids(tiny, "Hi"), temperature=1.5, forced=(11, 12))]
    output = generate_batch(
        tiny.model, tiny.tokenizer, rows, GenerationSettings(max_new_tokens=5, seed=1)
    ).outputs[0]
    assert output.token_ids[:2] == [11, 12] and output.logprobs == []


def test_token_texts_concatenate_to_the_decoded_answer(tiny):
    rows = [Row(_ids(tiny, p), temperature=t) for p in PROMPTS for t in (0.0, 1.3)]
    settings = GenerationSettings(max_new_tokens=24, logprobs=2, seed=11)
    outcome = generate_batch(tiny.model, tiny.tokenizer, rows, settings)
    for output in outcome.outputs:
        texts = [entry.text for entry in output.logprobs]
        assert all(isinstance(text, str) for text in texts)
        assert "".join(texts) == tiny.text_of(output)
        for entry in output.logprobs:
            for token, text, _ in entry.top:
                assert text == tiny.tokenizer.decode([token])


def test_engine_reports_logprobs_and_forks_from_text(tiny):
    assert tiny.capabilities.token_logprobs
    prompt = tiny.render([{"role": "user", "content": "Hello"}])
    forced_ids = tuple(tiny.tokenizer.encode("Paris is", add_special_tokens=False))
    outcome = tiny.generate(
        [PromptRow(prompt), PromptRow(prompt, forced_text="Paris is")],
        GenerationSettings(max_new_tokens=8, logprobs=3),
        stop=StopSignal(),
    )
    plain, fork = outcome.outputs
    assert len(plain.logprobs) == len(plain.token_ids)
    assert tuple(fork.token_ids[: len(forced_ids)]) == forced_ids
    assert tiny.text_of(fork).startswith("Paris is")
