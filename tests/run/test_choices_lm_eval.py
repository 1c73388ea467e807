"""The same numbers as lm-evaluation-harness: a small local multiple-choice task run by
``lm-eval`` on the default model (the very model and tokenizer objects lmwidgets loaded), and
lmwidgets' per-choice log-likelihoods, ``acc`` and ``acc_norm`` checked against it."""

import json
import math

import pytest

import lmwidgets

pytestmark = pytest.mark.slow

ITEMS = [
    ("What is the capital of France?", ["Paris", "Lyon", "Marseille"], 0),
    ("What is the opposite of hot?", ["warm", "cold", "the sun", "ice cream"], 1),
    ("How many legs does a spider have?", ["six", "eight", "four legs"], 1),
    ("Which planet is known as the red planet?", ["Venus", "Mars", "Jupiter"], 1),
    ("What colour is the sky on a clear day?", ["green", "blue", "a very bright red"], 1),
    ("What do bees make?", ["honey", "milk", "silk"], 0),
]

TASK = """task: lmwidgets_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: gold
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: acc_norm
"""


@pytest.fixture(scope="module")
def smol():
    from lmwidgets.engines.registry import REGISTRY

    loaded = lmwidgets.load_model(name="smol")
    yield loaded
    if "smol" in REGISTRY:
        REGISTRY.remove("smol")


def _lm_eval(smol, tmp_path, rows):
    pytest.importorskip("lm_eval")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    (tmp_path / "task.yaml").write_text(TASK.format(data=data), encoding="utf-8")
    model = HFLM(pretrained=smol.model, tokenizer=smol.tokenizer, batch_size=8)
    return simple_evaluate(
        model=model,
        tasks=["lmwidgets_mc"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        log_samples=True,
    )


def test_choice_scores_acc_and_acc_norm_equal_lm_eval(smol, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    dataset = [{"input": q, "choices": c, "expected": gold} for q, c, gold in ITEMS]
    ours = lmwidgets.prompt("{input}", model="smol", dataset=dataset, display=False)
    rows = [
        {"context": result.prompt, "choices": result.extras["choices"], "gold": gold}
        for result, (_, _, gold) in zip(ours, ITEMS, strict=True)
    ]
    theirs = _lm_eval(smol, tmp_path, rows)
    samples = sorted(theirs["samples"]["lmwidgets_mc"], key=lambda s: s["doc_id"])
    assert len(samples) == len(ITEMS)
    for result, sample in zip(ours, samples, strict=True):
        lls = [float(resp[0][0]) for resp in sample["resps"]]
        assert result.choice_logprobs == pytest.approx(lls, abs=1e-4)
        assert result.correct == bool(sample["acc"])
        assert result.record["choices"]["acc_norm_correct"] == bool(sample["acc_norm"])
        greedy = [bool(resp[0][1]) for resp in sample["resps"]]
        assert result.extras["greedy"] == greedy
    metrics = theirs["results"]["lmwidgets_mc"]
    assert ours.scores["zero-shot"] == pytest.approx(metrics["acc,none"])
    norm = sum(r.record["choices"]["acc_norm_correct"] for r in ours) / len(ITEMS)
    assert norm == pytest.approx(metrics["acc_norm,none"])
    assert any(f"zero-shot {norm:.0%}" in note for note in ours.notes)
    # the picks are lm-eval's: the best total, and the best per character
    for result in ours:
        lls, choices = result.choice_logprobs, result.extras["choices"]
        assert result.answer == choices[max(range(len(lls)), key=lambda i: (lls[i], -i))]
        per_char = [lp / len(c) for lp, c in zip(lls, choices, strict=True)]
        assert result.extras["acc_norm"] == per_char.index(max(per_char))
        assert all(math.isfinite(v) and v < 0 for v in lls)
