"""LoRA adapters on a tiny Llama: attach without activating, mixed batches, records, bad input."""

import json
import shutil

import pytest
from tiny_models import build_llama, build_lora

import lmwidgets
from lmwidgets.engines.base import use_adapter
from lmwidgets.engines.transformers.adapters import (
    AdapterWarning,
    load_adapter,
    unload_adapter,
)


@pytest.fixture(scope="session")
def loras(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {
        "a1": build_lora(tiny_dir, root / "a1", seed=1),
        "a2": build_lora(
            tiny_dir, root / "a2", seed=2, rank=8, targets=("q_proj", "v_proj", "down_proj")
        ),
        "a3": build_lora(tiny_dir, root / "a3", seed=3),
        "pickled": build_lora(tiny_dir, root / "pickled", seed=4, safe=False),
    }


def run(**kwargs):
    kwargs.setdefault("max_new_tokens", 12)
    kwargs.setdefault("display", False)
    kwargs.setdefault("cache", False)  # these tests compare generations, not cached answers
    return lmwidgets.prompt(kwargs.pop("text", "Hello there"), **kwargs)


def test_attaching_does_not_activate(tiny, loras):
    before = run().text
    info = load_adapter(tiny, loras["a1"], name="a1")
    assert info.rank == 4 and info.target_modules == ["q_proj", "v_proj"] and info.parameters > 0
    assert run().text == before  # still the base model
    assert run(adapter="a1").text != before


def test_mixed_batch_equals_each_alone_and_base_equals_no_adapter(tiny, loras, monkeypatch):
    before = run().text
    for name in ("a1", "a2", "a3"):
        load_adapter(tiny, loras[name], name=name)
    import lmwidgets.engines.transformers.generation as generation

    calls = []
    original = generation.generate_batch
    monkeypatch.setattr(
        generation, "generate_batch", lambda *a, **k: calls.append(len(a[2])) or original(*a, **k)
    )
    together = run(adapters="base,a1,a2,a3")
    assert calls == [4]
    assert together.variants == ["base", "a1", "a2", "a3"]
    assert together["base"].text == before
    for name in ("a1", "a2", "a3"):
        assert together[name].text == run(adapter=name).text
    assert len({r.text for r in together}) > 1


def test_records_prove_which_adapter_ran(tiny, loras):
    from lmwidgets.engines.transformers.cache import sha256_file

    load_adapter(tiny, loras["a1"], name="a1", scale=0.5)
    comparison = run(adapters="base,a1")
    assert comparison["base"].record["adapter"] is None
    record = comparison["a1"].record["adapter"]
    assert record["name"] == "a1" and record["scale"] == 0.5
    assert record["weights_sha256"] == sha256_file(loras["a1"] / "adapter_model.safetensors")
    assert record["config_sha256"] == sha256_file(loras["a1"] / "adapter_config.json")
    assert comparison["a1"].adapter == "a1"
    assert lmwidgets.rerun(comparison).matched


def test_scale_zero_is_the_base_model(tiny, loras):
    before = run().text
    load_adapter(tiny, loras["a1"], name="off", scale=0.0)
    assert run(adapter="off").text == before


def test_use_list_and_unload(tiny, loras):
    from peft.tuners.lora import LoraLayer

    before = run().text
    load_adapter(tiny, loras["a1"], name="a1")
    load_adapter(tiny, loras["a2"], name="a2")
    use_adapter(tiny, "a1")
    assert run()[0].record["adapter"]["name"] == "a1"
    assert run(adapter="base").text == before
    use_adapter(tiny, "base")
    assert run().text == before
    unload_adapter(tiny, "a1")
    assert list(tiny.adapters) == ["a2"]
    with pytest.raises(lmwidgets.AdapterError, match="a1"):
        run(adapter="a1")
    unload_adapter(tiny, "a2")
    assert not any(isinstance(m, LoraLayer) for m in tiny.model.modules())
    assert "peft_model" not in tiny.extras
    assert run().text == before


def test_grid_of_strategies_and_adapters_and_dataset_scores(tiny, loras):
    load_adapter(tiny, loras["a1"], name="a1")
    grid = run(compare="zero-shot,cot", adapters="base,a1")
    assert grid.variants == ["zero-shot · base", "zero-shot · a1", "cot · base", "cot · a1"]
    scored = run(
        text="Say {input}",
        adapters="base,a1",
        dataset=[{"input": "x", "expected": "x"}, {"input": "y", "expected": "y"}],
    )
    assert set(scored.scores) == {"base", "a1"} and len(scored) == 4


def test_pickle_adapter_refused_unless_opted_in(tiny, loras):
    with pytest.raises(lmwidgets.UnsafeWeightsError, match="safetensors"):
        load_adapter(tiny, loras["pickled"], name="p")
    assert not tiny.adapters
    info = load_adapter(tiny, loras["pickled"], name="p", allow_pickle=True)
    assert info.weights_file == "adapter_model.bin"


def test_other_architecture_is_refused_and_nothing_changes(tiny, loras, tmp_path):
    load_adapter(tiny, loras["a1"], name="a1")
    expected = run(adapters="base,a1")
    wide = build_llama(tmp_path / "wide", seed=5, layers=3)
    import json as _json

    config = _json.loads((wide / "config.json").read_text())
    config.update(hidden_size=96, intermediate_size=160)
    (wide / "config.json").write_text(_json.dumps(config))
    (wide / "model.safetensors").unlink()
    from transformers import AutoConfig, AutoModelForCausalLM

    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(wide))).save_pretrained(
        str(wide)
    )
    foreign = build_lora(wide, tmp_path / "foreign", seed=6)
    with pytest.raises(lmwidgets.AdapterError, match="does not fit this model"):
        load_adapter(tiny, foreign, name="foreign")
    assert list(tiny.adapters) == ["a1"]
    again = run(adapters="base,a1")
    assert [r.text for r in again] == [r.text for r in expected]


def test_missing_target_modules_are_refused(tiny, loras, tmp_path):
    target = tmp_path / "renamed"
    shutil.copytree(loras["a1"], target)
    from safetensors.torch import load_file, save_file

    state = load_file(target / "adapter_model.safetensors")
    save_file(
        {k.replace("q_proj", "qq_proj"): v for k, v in state.items()},
        target / "adapter_model.safetensors",
    )
    with pytest.raises(lmwidgets.AdapterError, match="qq_proj does not exist"):
        load_adapter(tiny, target, name="renamed")
    assert not tiny.adapters and "peft_model" not in tiny.extras


def test_config_checks(tiny, loras, tmp_path):
    with pytest.raises(lmwidgets.AdapterError, match="does not exist"):
        load_adapter(tiny, tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(lmwidgets.AdapterError, match=r"adapter_config\.json"):
        load_adapter(tiny, empty)
    load_adapter(tiny, loras["a1"], name="a1")
    with pytest.raises(lmwidgets.NameTakenError, match="already attached"):
        load_adapter(tiny, loras["a3"], name="a1")
    with pytest.raises(lmwidgets.AdapterError, match="cannot name"):
        load_adapter(tiny, loras["a3"], name="base")
    with pytest.raises(lmwidgets.AdapterError, match="adapters: a1"):
        run(adapters="base,zzz")
    with pytest.raises(lmwidgets.StrategyError, match="more than once"):
        run(adapters="a1,a1")
    with pytest.raises(lmwidgets.StrategyError, match="not both"):
        run(adapter="a1", adapters="a1")


def test_remote_code_keys_are_ignored_and_other_base_warns(tiny, loras, tmp_path):
    target = tmp_path / "odd"
    shutil.copytree(loras["a1"], target)
    config = json.loads((target / "adapter_config.json").read_text())
    config["auto_mapping"] = {"base_model_class": "evil.Module", "parent_library": "evil"}
    config["trust_remote_code"] = True
    config["base_model_name_or_path"] = "someone/another-model"
    (target / "adapter_config.json").write_text(json.dumps(config))
    with pytest.warns(AdapterWarning, match="someone/another-model"):
        info = load_adapter(tiny, target, name="odd")
    assert set(info.ignored_config_keys) == {"auto_mapping", "trust_remote_code"}
    assert run(adapter="odd")[0].tokens > 0


def test_adapter_magics(shell, tiny_dir, loras, capsys):
    assert shell.run_cell(f"%lm load {tiny_dir} --as lmw_ad").success
    assert shell.run_cell(f"%lm adapter load {loras['a1']} --as one --scale 0.7").success
    assert shell.run_cell(f"%lm adapter load {loras['a2']} --as two").success
    assert shell.run_cell("%lm adapter list").success
    out = capsys.readouterr().out
    assert "one · on lmw_ad · rank 4" in out and "scale 0.7" in out and "two" in out
    assert shell.run_cell("%%prompt --adapters base,one,two -n 4 --out lmw_cmp\nHi").success
    assert shell.user_ns["lmw_cmp"].variants == ["base", "one", "two"]
    assert shell.run_cell("%lm adapter use two").success
    assert shell.run_cell("%%prompt -n 3 --out lmw_def\nHi").success
    assert shell.user_ns["lmw_def"][0].adapter == "two"
    assert shell.run_cell("%lm adapter unload two").success
    bad = shell.run_cell("%%prompt --adapter two\nHi")
    assert isinstance(bad.error_in_exec, lmwidgets.AdapterError)
    assert (
        shell.run_cell("%lm adapter --help").success
        and shell.run_cell("%lm adapter load --help").success
    )
    assert "--scale" in capsys.readouterr().out
