"""Model sources, safety checks, devices, dtypes and the registry."""

import gc
import json
import shutil
import weakref

import pytest

import lmwidgets
from lmwidgets.engines.transformers.loading import pick_device, pick_dtype
from lmwidgets.engines.transformers.sources import resolve_source


def test_missing_path(registry):
    with pytest.raises(lmwidgets.ModelNotFoundError, match="No model at"):
        lmwidgets.load_model("./no/such/model")


def test_plain_file_is_not_a_model(tmp_path, registry):
    path = tmp_path / "notes.txt"
    path.write_text("hi")
    with pytest.raises(lmwidgets.ModelNotFoundError, match="is a file"):
        lmwidgets.load_model(str(path))


def test_pickle_file_is_refused(tmp_path, registry):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(lmwidgets.UnsafeWeightsError, match="pickle"):
        lmwidgets.load_model(str(path))


def test_directory_without_config(tmp_path, registry):
    with pytest.raises(lmwidgets.ModelNotFoundError, match=r"config\.json"):
        lmwidgets.load_model(str(tmp_path))


def test_directory_without_weights(tmp_path, tiny_dir, registry):
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(lmwidgets.ModelNotFoundError, match="no weights"):
        lmwidgets.load_model(str(tmp_path))


@pytest.fixture
def pickle_dir(tmp_path, tiny_dir):
    """The tiny model with its weights saved as pickle (pytorch_model.bin) only."""
    import torch
    from safetensors.torch import load_file

    target = tmp_path / "pickled"
    shutil.copytree(tiny_dir, target)
    state = load_file(target / "model.safetensors")
    (target / "model.safetensors").unlink()
    torch.save(state, target / "pytorch_model.bin")
    return target


def test_pickle_only_directory_is_refused(pickle_dir, registry):
    with pytest.raises(lmwidgets.UnsafeWeightsError) as info:
        lmwidgets.load_model(str(pickle_dir))
    assert "pytorch_model.bin" in str(info.value)
    assert "--allow-pickle" in str(info.value)
    assert len(registry) == 0


def test_pickle_only_directory_loads_with_opt_in(pickle_dir, registry):
    loaded = lmwidgets.load_model(str(pickle_dir), allow_pickle=True)
    assert loaded.n_params > 0
    assert lmwidgets.prompt("hi", max_new_tokens=2, display=False).results[0].tokens > 0


def test_remote_code_is_refused(tmp_path, tiny_dir, registry):
    target = tmp_path / "remote"
    shutil.copytree(tiny_dir, target)
    config = json.loads((target / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(lmwidgets.RemoteCodeError, match="--trust-remote-code"):
        lmwidgets.load_model(str(target))


def test_hub_id_without_network_or_cache(registry, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    source = resolve_source("someone/not-a-real-model")
    assert source.kind == "hub"
    with pytest.raises(lmwidgets.ModelNotFoundError, match="local hub cache"):
        lmwidgets.load_model("someone/not-a-real-model")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_invalid_device(device):
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--device"):
        pick_device(device)


def test_cuda_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(lmwidgets.DeviceError, match="no CUDA device"):
        pick_device("cuda")
    assert pick_device("auto") == "cpu"


def test_dtypes():
    assert pick_dtype("auto", "cpu") == "float32"
    assert pick_dtype("auto", "cuda") == "bfloat16"
    assert pick_dtype("float16", "cpu") == "float16"
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--dtype"):
        pick_dtype("int4", "cpu")


def test_load_summary_and_record(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="t", dtype="bfloat16")
    summary = loaded.summary()
    for part in ("t ·", "LlamaForCausalLM", "params", "cpu", "bfloat16", "KB"):
        assert part in summary
    record = loaded.record()
    assert len(record["weights_sha256"]) == 64
    assert record["dtype"] == "bfloat16"
    assert next(loaded.model.parameters()).dtype.__str__() == "torch.bfloat16"


def test_same_source_twice_is_a_noop(tiny_dir, registry):
    first = lmwidgets.load_model(str(tiny_dir))
    second = lmwidgets.load_model(str(tiny_dir))
    assert first is second
    assert registry.names() == [first.name]
    other_dtype = lmwidgets.load_model(str(tiny_dir), dtype="bfloat16")
    assert other_dtype is not first and len(registry) == 2


def test_name_taken(tiny_dir, tiny_plain_dir, registry):
    lmwidgets.load_model(str(tiny_dir), name="m")
    with pytest.raises(lmwidgets.NameTakenError, match="already loaded"):
        lmwidgets.load_model(str(tiny_plain_dir), name="m")
    assert registry.get("m").source.location == str(tiny_dir)


def test_unknown_model_and_no_model(registry, tiny_dir):
    with pytest.raises(lmwidgets.NoModelLoadedError, match="%lm load"):
        lmwidgets.prompt("hi", display=False)
    lmwidgets.load_model(str(tiny_dir), name="a")
    with pytest.raises(lmwidgets.UnknownModelError, match=r"'b'.*loaded: a"):
        lmwidgets.prompt("hi", model="b", display=False)


def test_unload_frees_the_model(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="gone")
    ref = weakref.ref(loaded.model)
    lmwidgets.unload_model("gone")
    del loaded
    gc.collect()
    assert ref() is None
    assert "gone" not in registry
    with pytest.raises(lmwidgets.UnknownModelError):
        lmwidgets.unload_model("gone")


def test_current_model_follows_loads_and_unloads(tiny_dir, tiny_plain_dir, registry):
    lmwidgets.load_model(str(tiny_dir), name="a")
    lmwidgets.load_model(str(tiny_plain_dir), name="b")
    assert registry.current == "b"
    lmwidgets.unload_model("b")
    assert registry.current == "a"


def test_progress_is_reported(tiny_dir, registry):
    seen = []
    lmwidgets.load_model(str(tiny_dir), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("weights" in m.lower() for _, m in seen)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"quantize": "4bit"}, "needs a CUDA GPU"),
        ({"quantize": "8bit"}, "needs a CUDA GPU"),
        ({"quantize": "2bit"}, "4bit or 8bit"),
        ({"compile": True}, "for CUDA GPUs"),
    ],
)
def test_gpu_only_options_fail_clearly_on_cpu(registry, tiny_dir, options, match):
    with pytest.raises(lmwidgets.LmWidgetsError, match=match):
        lmwidgets.load_model(str(tiny_dir), name="gpu-only", device="cpu", **options)
    assert "gpu-only" not in registry


def test_static_cache_buckets_give_the_same_tokens(tiny):
    from lmwidgets.engines.transformers.generation import cache_bucket

    assert [cache_bucket(n) for n in (1, 256, 257, 700)] == [256, 256, 512, 768]
    kwargs = dict(compare="zero-shot,cot", max_new_tokens=16, display=False)
    dynamic = lmwidgets.prompt("Hello there, how are you?", **kwargs)
    tiny.extras["static_cache"] = True  # what --compile sets (compiling itself needs CUDA)
    static = lmwidgets.prompt("Hello there, how are you?", **kwargs)
    assert [r.text for r in static] == [r.text for r in dynamic]
    assert static[0].record["model"]["compiled"] is True
