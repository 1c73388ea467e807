"""train_lora: learns, saves a loadable safetensors adapter, and leaves the model as it was."""

import pytest
import torch
from tiny_models import build_lora

import lmwidgets
from lmwidgets.engines.transformers.adapters import load_adapter
from lmwidgets.engines.transformers.training import train_lora

PAIRS = [("Hello", "Bonjour"), ("Thanks", "Merci"), ("Cat", "Chat")]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_trains_saves_and_restores_the_model(tiny, tmp_path):
    before_text = lmwidgets.prompt("Hello", max_new_tokens=8, display=False).text
    before = _state(tiny.model)
    trained = train_lora(PAIRS, tmp_path / "fr", steps=12, rank=4, learning_rate=1e-2)
    assert trained.losses[-1] < trained.losses[0]
    assert (tmp_path / "fr" / "adapter_model.safetensors").is_file()
    after = _state(tiny.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in tiny.model.parameters())
    assert lmwidgets.prompt("Hello", max_new_tokens=8, display=False).text == before_text
    info = load_adapter(tiny, trained, name="fr")
    assert info.rank == 4 and info.base_model_name_or_path == tiny.source.spec
    learned = lmwidgets.prompt("Hello", adapter="fr", max_new_tokens=8, display=False).text
    assert learned != before_text


def test_training_beside_attached_adapters_keeps_them(tiny, tiny_dir, tmp_path):
    load_adapter(tiny, build_lora(tiny_dir, tmp_path / "other", seed=9), name="other")
    expected = lmwidgets.prompt("Hi", adapters="base,other", max_new_tokens=8, display=False)
    train_lora(PAIRS, tmp_path / "second", steps=2, layers=[1])
    assert list(tiny.adapters) == ["other"]
    again = lmwidgets.prompt("Hi", adapters="base,other", max_new_tokens=8, display=False)
    assert [r.text for r in again] == [r.text for r in expected]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rank": 0}, lmwidgets.InvalidArgumentError),
        ({"steps": 0}, lmwidgets.InvalidArgumentError),
        ({"learning_rate": 0}, lmwidgets.InvalidArgumentError),
    ],
)
def test_bad_arguments(tiny, tmp_path, kwargs, error):
    with pytest.raises(error):
        train_lora(PAIRS, tmp_path / "x", **kwargs)


def test_bad_examples(tiny, tmp_path):
    with pytest.raises(lmwidgets.ExamplesError):
        train_lora([], tmp_path / "x")
