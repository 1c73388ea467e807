"""CPU kernels chosen by measurement: the decision, its cache, the override and what it says."""

import json

import pytest
import torch
from IPython.core.error import UsageError

import lmwidgets
from lmwidgets.engines.transformers import (
    cpu_kernels,
    fused_linear,
    kernel_choice,
    small_ops_choice,
)
from lmwidgets.errors import DeviceError, InvalidArgumentError, LmWidgetsError

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported(), reason="no oneDNN packed linear in this torch"
)


def _timings(shapes, plain, packed):
    """Seconds per shape: ``plain``/``packed`` are (1 row, 4 rows) for every shape."""
    return {
        shape: {
            "plain": dict(zip((1, 4), plain, strict=True)),
            "packed": dict(zip((1, 4), packed, strict=True)),
        }
        for shape in shapes
    }


def test_decide_packs_only_where_faster_and_never_slower():
    timings = {
        "a": {"plain": {1: 10.0, 4: 30.0}, "packed": {1: 5.0, 4: 6.0}},  # faster everywhere
        "b": {"plain": {1: 10.0, 4: 30.0}, "packed": {1: 15.0, 4: 6.0}},  # slower for 1 row
        "c": {"plain": {1: 10.0, 4: 30.0}, "packed": {1: 9.8, 4: 29.0}},  # within the margin
        "d": {"plain": {1: 10.0, 4: 30.0}, "packed": {1: 20.0, 4: 60.0}},  # slower
        "e": {"plain": {1: 10.0, 4: 30.0}, "packed": {1: 10.0, 4: 12.0}},  # a tie, then faster
    }
    plan = kernel_choice.decide(timings)
    assert plan == {
        "a": (True, True),
        "b": (False, False),  # never slower than plain at a batch size measured
        "c": (False, False),
        "d": (False, False),
        "e": (True, True),
    }
    assert kernel_choice.plan_kernel({"a": (True, True)}) == "packed"
    assert kernel_choice.plan_kernel(plan) == "mixed"
    assert kernel_choice.plan_kernel({"d": (False, False)}) == "plain"


def test_a_layer_can_run_packed_for_batches_only(tiny_dir, registry):
    """The per-layer dispatch (used by explicit plans): plain for 1 row, packed for more."""
    model = lmwidgets.load_model(str(tiny_dir), name="m", cpu_kernels="plain").model
    plan = {shape: (False, True) for shape in kernel_choice._shapes(model)}
    assert cpu_kernels.prepack_linear_layers(model, plan=plan) > 0
    layer = model.lm_head
    x1, x4 = torch.randn(1, 1, layer.in_features), torch.randn(4, 1, layer.in_features)
    with torch.inference_mode():
        dense1, dense4 = (torch.nn.functional.linear(x, layer.weight) for x in (x1, x4))
        torch.testing.assert_close(layer(x1), dense1, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer(x4), dense4, rtol=1e-5, atol=1e-5)
    assert layer._lmw_single is False and layer._lmw_multi is True
    # The dense weights still run for 1 row, so their pages are not given back.
    assert cpu_kernels.release_dense_pages(model) == 0


def _plain_model(tiny_dir, name):
    return lmwidgets.load_model(str(tiny_dir), name=name, cpu_kernels="plain")


def _fusion_timings(model, separate, fused):
    """Seconds per sibling group kind: ``separate``/``fused`` are (1 row, 4 rows)."""
    keys = {group.key for group in fused_linear.find_groups(model)}
    assert keys, "the tiny Llama has q/k/v and gate/up siblings"
    return {
        key: {
            "separate": dict(zip((1, 4), separate, strict=True)),
            "fused": dict(zip((1, 4), fused, strict=True)),
        }
        for key in keys
    }


def test_injected_timings_set_each_layer_and_are_cached(tiny_dir, registry, monkeypatch):
    model = _plain_model(tiny_dir, "first").model
    shapes = sorted(kernel_choice._shapes(model))
    # Packing wins for half the shapes (the others measure slower for one row).
    timings = _timings(shapes[::2], plain=(2.0, 3.0), packed=(1.0, 1.0))
    timings.update(_timings(shapes[1::2], plain=(1.0, 3.0), packed=(2.0, 1.0)))
    slower = _fusion_timings(model, separate=(1.0, 1.0), fused=(1.0, 2.0))  # never fused
    choice = kernel_choice.choose_kernels(model, "auto", timings=timings, fusion_timings=slower)
    assert not any(choice.fusion.values()) and set(choice.fusion) == set(slower)
    assert (choice.kernel, choice.how) == ("mixed", "measured")
    expected = {shape: (shape in shapes[::2],) * 2 for shape in shapes}
    assert choice.plan == expected
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            packed = expected[cpu_kernels.shape_key(module)][0]
            assert hasattr(module, "_lmw_packed") is packed
            assert ("forward" in vars(module)) is packed

    # A second model of the same shapes on this CPU: the cached decision, nothing measured.
    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(kernel_choice, "measure", no_measuring)
    monkeypatch.setattr(kernel_choice, "measure_fusion", no_measuring)
    other = _plain_model(tiny_dir, "second").model
    again = kernel_choice.choose_kernels(other, "auto")
    assert (again.how, again.plan) == ("cached", choice.plan)
    cached = json.loads((lmwidgets_cache() / kernel_choice.CACHE_FILE).read_text())
    (entry,) = cached["entries"].values()
    assert entry["cpu"]["model"] and entry["cpu"]["threads"] == torch.get_num_threads()


def lmwidgets_cache():
    from lmwidgets.engines.transformers.cache import cache_dir

    return cache_dir()


def test_cache_key_follows_cpu_threads_and_shapes(tiny_dir, registry):
    model = _plain_model(tiny_dir, "m").model
    cpu = kernel_choice.cpu_description()
    key = kernel_choice.cache_key(model, cpu, (1, 4))
    assert key == kernel_choice.cache_key(model, dict(cpu), (1, 4))
    assert key != kernel_choice.cache_key(model, {**cpu, "threads": cpu["threads"] + 1}, (1, 4))
    assert key != kernel_choice.cache_key(model, {**cpu, "model": "another CPU"}, (1, 4))
    assert key != kernel_choice.cache_key(model, cpu, (1, 8))


def test_slower_packing_loads_plain_and_a_corrupt_cache_measures_again(tiny_dir, registry):
    model = _plain_model(tiny_dir, "m").model
    shapes = kernel_choice._shapes(model)
    slower = _timings(shapes, plain=(1.0, 1.0), packed=(2.0, 2.0))
    choice = kernel_choice.choose_kernels(model, "auto", timings=slower)
    assert choice.kernel == "plain" and cpu_kernels.packed_layers(model) == 0
    (lmwidgets_cache() / kernel_choice.CACHE_FILE).write_text("{not json")
    measured = kernel_choice.choose_kernels(model, "auto")  # a real measurement
    assert measured.how.startswith("measured")
    assert set(measured.timings_us) == set(shapes)
    assert all(set(t) == {"plain", "packed"} for t in measured.timings_us.values())


def test_a_real_measurement_on_load_is_recorded(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="auto")
    choice = loaded.cpu_kernels
    assert choice.how.startswith("measured") and choice.timings_us
    assert f"CPU kernels {choice.kernel}" in loaded.summary()
    record = loaded.record()
    assert record["cpu_kernels"] == choice.kernel
    detail = record["cpu_kernels_choice"]
    assert detail["how"] == choice.how and detail["lower_precision"] is False
    assert detail["cpu"]["threads"] >= 1 and "torch" in detail["cpu"]
    json.dumps(record)  # records are JSON
    again = lmwidgets.load_model(str(tiny_dir), name="auto-again")
    if choice.how == "measured":  # a busy CPU measures again next time
        assert again.cpu_kernels.how == "cached"


def test_run_records_name_the_kernels_and_the_response_cache_ignores_timings(tiny_dir, registry):
    from lmwidgets.run.cache_keys import model_identity

    loaded = lmwidgets.load_model(str(tiny_dir), name="packed", cpu_kernels="packed")
    comparison = lmwidgets.prompt("Hello", model="packed", max_new_tokens=4, display=False)
    model = comparison.records[0]["model"]
    assert model["cpu_kernels"] == "packed"
    assert model["cpu_kernels_choice"]["how"] == "asked"
    assert "cpu_kernels_choice" not in model_identity(loaded.record())


@pytest.mark.parametrize("kernels", ["packed", "plain", "auto"])
def test_float32_kernels_answer_like_plain_transformers(tiny_dir, registry, kernels):
    plain = lmwidgets.load_model(str(tiny_dir), name="plain", cpu_kernels="plain")
    other = lmwidgets.load_model(str(tiny_dir), name="other", cpu_kernels=kernels)
    assert other is not plain
    prompts = ["Hello there", "Tell me a story about a cat"]
    for kernel_model in (plain, other):
        assert kernel_model.cpu_kernels.kernel != "bf16"
    texts = [
        [lmwidgets.prompt(p, model=m.name, max_new_tokens=16, display=False).text for p in prompts]
        for m in (plain, other)
    ]
    assert texts[0] == texts[1]


def test_bf16_is_opt_in_and_says_lower_precision(tiny_dir, registry):
    if not cpu_kernels.bf16_supported():
        with pytest.raises(DeviceError, match="native bfloat16"):
            lmwidgets.load_model(str(tiny_dir), name="b", cpu_kernels="bf16")
        return
    loaded = lmwidgets.load_model(str(tiny_dir), name="b", cpu_kernels="bf16")
    assert "bf16, lower precision" in loaded.summary()
    assert loaded.record()["cpu_kernels_choice"]["lower_precision"] is True
    text = lmwidgets.prompt("Hello there", model="b", max_new_tokens=8, display=False).text
    assert isinstance(text, str)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpu_kernels": "fast"}, "must be one of auto, packed, plain, bf16"),
        ({"cpu_kernels": 3}, "--cpu-kernels"),
        ({"cpu_kernels": "packed", "prepack": False}, "disagree"),
        ({"cpu_kernels": "plain", "dtype": "bfloat16"}, "float32 models on the CPU"),
    ],
)
def test_bad_kernel_options_are_refused_before_loading(tiny_dir, registry, options, message):
    with pytest.raises(LmWidgetsError, match=message):
        lmwidgets.load_model(str(tiny_dir), name="x", **options)
    assert "x" not in registry


def test_asking_a_loaded_model_for_other_kernels_switches_in_place(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="m", cpu_kernels="packed")
    assert loaded.prepacked_layers > 0
    same = lmwidgets.load_model(str(tiny_dir), cpu_kernels="plain")
    assert same is loaded and loaded.prepacked_layers == 0
    assert loaded.cpu_kernels.label() == "plain (asked)"
    assert "forward" not in vars(loaded.model.lm_head)


def test_magic_option_parses_and_refuses_unknown_kernels():
    from lmwidgets.notebook.parsers import lm_parser

    LM = lm_parser()

    assert LM.parse(["load", "--cpu-kernels", "plain"]).cpu_kernels == "plain"
    assert LM.parse(["load"]).cpu_kernels is None
    with pytest.raises(UsageError, match="cpu-kernels"):
        LM.parse(["load", "--cpu-kernels", "fastest"])


def test_check_kernels_accepts_case_and_none():
    assert kernel_choice.check_kernels(None) == "auto"
    assert kernel_choice.check_kernels(" Packed ") == "packed"
    with pytest.raises(InvalidArgumentError):
        kernel_choice.check_kernels(["packed"])


def test_a_later_load_uses_the_cached_choice(tiny_dir, registry, monkeypatch):
    # the compiled small operations measured no faster (tests/engines/test_lean_ops.py)
    tie = {"aten_us": 1.0, "compiled_us": 1.0, "agree": True, "compiled_layers": 2}
    monkeypatch.setattr(small_ops_choice, "measure", lambda model, library: dict(tie))
    first = _plain_model(tiny_dir, "first")
    shapes = kernel_choice._shapes(first.model)
    timings = _timings(shapes, plain=(2.0, 3.0), packed=(1.0, 1.0))
    faster = _fusion_timings(first.model, separate=(2.0, 2.0), fused=(1.0, 2.0))
    kernel_choice.choose_kernels(first.model, "auto", timings=timings, fusion_timings=faster)

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(kernel_choice, "measure", no_measuring)
    monkeypatch.setattr(kernel_choice, "measure_fusion", no_measuring)
    later = lmwidgets.load_model(str(tiny_dir), name="later")
    assert later.cpu_kernels.label() == "packed, fused (cached)"
    assert later.cpu_kernels.fusion == dict.fromkeys(faster, True)
    assert later.prepacked_layers == len(
        [m for m in later.model.modules() if isinstance(m, torch.nn.Linear)]
    )
    assert len(fused_linear.fused_groups(later.model)) == 2 * 2  # 2 layers x (q/k/v, gate/up)
    assert "CPU kernels packed, fused (cached)" in later.summary()
    record = later.cpu_kernels.record()
    assert record["fused"] == later.cpu_kernels.fusion and record["fusion_timings_us"]


def test_busy_measurements_are_retried_a_few_times_then_kept(tiny_dir, registry, monkeypatch):
    model = _plain_model(tiny_dir, "m").model
    shapes = kernel_choice._shapes(model)
    calls = []

    def busy_measure(model, batch_sizes):
        calls.append(1)
        return _timings(shapes, plain=(1.0, 3.0), packed=(2.0, 1.0)), 5.0  # noisy

    monkeypatch.setattr(kernel_choice, "measure", busy_measure)
    hows = [
        kernel_choice.choose_kernels(model, "auto").how for _ in range(kernel_choice.MAX_TRIES + 2)
    ]
    assert hows[: kernel_choice.MAX_TRIES] == ["measured on a busy CPU"] * kernel_choice.MAX_TRIES
    assert hows[kernel_choice.MAX_TRIES :] == ["cached", "cached"]
    assert len(calls) == kernel_choice.MAX_TRIES


def test_one_timing_round_cannot_tell_its_noise():
    """A single round read as perfectly quiet once, and its 100x-too-slow timings (the other
    core busy) were cached for good: now it counts as busy, so a later load measures again."""
    one_round = {(0, "plain", 1): [0.05], (0, "packed", 1): [0.04]}
    assert kernel_choice._noise(one_round) == kernel_choice.UNKNOWN_NOISE
    assert kernel_choice._noise(one_round) > kernel_choice.NOISE_LIMIT
    steady = {(0, "plain", 1): [0.05, 0.05, 0.05], (0, "packed", 1): [0.04, 0.04, 0.04]}
    assert kernel_choice._noise(steady) == pytest.approx(1.0)
    bursty = {(0, "plain", 1): [0.05, 0.5, 0.5], (0, "packed", 1): [0.04, 0.4, 0.4]}
    assert kernel_choice._noise(bursty) == pytest.approx(10.0)


def test_even_a_spent_budget_times_enough_rounds_to_tell_the_noise(tiny_dir, registry):
    model = _plain_model(tiny_dir, "m").model
    cpu_kernels.prepack_linear_layers(model)
    timings, noise = kernel_choice.measure(model, budget=0.0)
    assert noise != kernel_choice.UNKNOWN_NOISE and noise >= 1.0
    assert all(rows.keys() == {1, 4} for kernels in timings.values() for rows in kernels.values())
