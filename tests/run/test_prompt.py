"""The prompt API end to end on tiny models: templates, records, limits and failures."""

import pytest
from tiny_models import raise_on_forward

import lmwidgets
from lmwidgets.core.answers import extract_answer


def test_chat_template_and_system(tiny):
    comparison = lmwidgets.prompt("Hello", system="Be brief.", max_new_tokens=4, display=False)
    result = comparison.results[0]
    assert result.prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert result.variant == "tiny" and result.strategy == "zero-shot"
    # Zero-shot columns get an answer too (issue 14), by the documented extraction rules.
    assert result.answer == extract_answer(result.text) and result.answer
    assert result.record["output"]["answer"] == result.answer


def test_plain_model_gets_plain_text(tiny_plain_dir, registry):
    lmwidgets.load_model(str(tiny_plain_dir))
    result = lmwidgets.prompt("Hello", system="Sys", max_new_tokens=3, display=False).results[0]
    assert result.prompt == "Sys\n\nHello"


def test_variables_are_interpolated(tiny):
    result = lmwidgets.prompt(
        "Capital of {c}? {nope}", variables={"c": "France"}, max_new_tokens=2, display=False
    )[0]
    assert "Capital of France? {nope}" in result.prompt


def test_record_says_what_ran(tiny):
    result = lmwidgets.prompt("Hi", max_new_tokens=5, temperature=0.7, seed=3, display=False)[0]
    record = result.record
    assert record["model"]["name"] == "tiny" and len(record["model"]["weights_sha256"]) == 64
    assert record["model"]["source"] == tiny.source.spec
    assert record["strategy"]["name"] == "zero-shot"
    assert record["adapter"] is None
    assert record["generation"] == {
        "max_new_tokens": 5,
        "temperature": 0.7,
        "top_p": 1.0,
        "seed": 3,
        "do_sample": True,
        "seed_given": True,
        "max_new_tokens_asked": 5,
        "samples": 1,
        "batch_size": 16,
    }
    assert record["prompt"]["rendered"] == result.prompt
    assert set(record["versions"]) >= {"lmwidgets", "torch", "transformers", "peft"}
    assert record["versions"]["lmwidgets"] == lmwidgets.__version__
    assert record["output"]["text"] == result.text


def test_same_seed_same_text(tiny):
    runs = [
        lmwidgets.prompt(
            "Story:", max_new_tokens=12, temperature=1.0, seed=5, display=False, cache=False
        ).text
        for _ in range(2)  # generated twice (not the second from the response cache)
    ]
    assert runs[0] == runs[1]


def test_empty_prompt(tiny):
    with pytest.raises(lmwidgets.PromptError, match="empty"):
        lmwidgets.prompt("   \n", display=False)


def test_prompt_longer_than_context(tiny):
    long = "word " * 2000  # the tiny model reads 512 tokens
    with pytest.raises(lmwidgets.PromptTooLongError) as info:
        lmwidgets.prompt(long, display=False)
    assert "512" in str(info.value) and "tokens" in str(info.value)
    assert lmwidgets.prompt("still works", max_new_tokens=2, display=False).results[0].tokens > 0


def test_answer_budget_is_lowered_to_fit_the_context(tiny):
    text = "word " * 110
    comparison = lmwidgets.prompt(text, max_new_tokens=500, display=False)
    assert comparison.notes and "lowered" in comparison.notes[0]
    record = comparison[0].record["generation"]
    assert record["max_new_tokens"] < 500 and record["max_new_tokens_asked"] == 500
    assert len(comparison[0].record["prompt"]["rendered"]) > 0


def _oom():
    import torch

    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_keeps_partial_text_and_model(tiny):
    earlier = lmwidgets.prompt("before", max_new_tokens=3, display=False)
    handle = raise_on_forward(tiny.model, 6, _oom)
    try:
        with pytest.raises(lmwidgets.OutOfMemoryError) as info:
            lmwidgets.prompt("Hello", max_new_tokens=50, display=False)
    finally:
        handle.remove()
    partial = info.value.partial
    assert partial.status == "error"
    assert partial[0].finish_reason == "error"
    assert 0 < partial[0].tokens < 50 and partial[0].text
    assert partial[0].answer is None  # a failed column's partial text has no answer
    assert "memory" in str(info.value)
    # The kernel stays usable: the model still answers and earlier results are intact.
    again = lmwidgets.prompt("Hello", max_new_tokens=3, display=False)
    assert again[0].complete and earlier[0].tokens == 3


def test_interrupt_keeps_partial_text(tiny):
    import torch

    handle = raise_on_forward(tiny.model, 4, KeyboardInterrupt)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            lmwidgets.prompt("Hello", max_new_tokens=50, display=False)
    finally:
        handle.remove()
    partial = info.value.partial
    assert partial.status == "stopped" and partial[0].finish_reason == "stopped"
    assert 0 < partial[0].tokens < 50
    assert torch.is_grad_enabled()
    assert lmwidgets.prompt("Hello", max_new_tokens=2, display=False)[0].tokens > 0


def test_comparison_access(tiny):
    comparison = lmwidgets.prompt("Hi", max_new_tokens=3, display=False)
    assert comparison["tiny"] is comparison[0]
    with pytest.raises(KeyError, match="columns: tiny"):
        comparison["other"]
    assert comparison.complete and comparison.variants == ["tiny"]
    assert "Comparison done" in repr(comparison)
