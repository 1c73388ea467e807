"""The lean step's small operations compiled (lean_ops.c): each loop against ATen's formula, the
compiled step against transformers' (greedy tokens equal, scores to float32 rounding), where it
runs and where it must not, the build's failure paths, and the choice made at load."""

import subprocess

import pytest
import torch

import lmwidgets
from lmwidgets.engines.transformers import (
    cpu_kernels,
    fused_linear,
    kernel_choice,
    lean_decode,
    lean_ops,
    small_ops_choice,
)
from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported() or lean_ops.library() is None,
    reason="no oneDNN packed linear in this torch, or no C compiler",
)

CLOSE = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture
def ops():
    return lean_ops.library()


def _rms(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


# -- each loop against ATen's formula --------------------------------------------------------


@pytest.mark.parametrize("width", [576, 64, 37])  # vector loop, one chunk, ragged tail
def test_rms_norm_and_the_residual(ops, width):
    x, y, weight = torch.randn(3, width), torch.randn(3, width), torch.randn(width)
    torch.testing.assert_close(lean_ops.rms_norm(ops, x, weight, 1e-5), _rms(x, weight, 1e-5))
    total, normed = lean_ops.add_rms_norm(ops, x, y, weight, 1e-6)
    assert torch.equal(total, x + y)  # one rounding, as ATen's add
    torch.testing.assert_close(normed, _rms(x + y, weight, 1e-6), **CLOSE)


def test_rotary_rounds_as_atens_mul_mul_add(ops):
    """The rotation of queries and keys in place, bit for bit (no fused multiply-add)."""
    rows, heads, head = 2, 5, 64
    stacked = torch.randn(rows, heads * head + 3 * head)  # rotated heads, then values
    cos, sin = torch.randn(rows, 1, head), torch.randn(rows, 1, head)
    half = head // 2
    x = stacked[:, : heads * head].view(rows, heads, head)
    turned = torch.cat((x[..., half:], x[..., :half]), -1)
    expected = x * cos + turned * sin
    values = stacked[:, heads * head :].clone()
    lean_ops.rotate_(ops, stacked, heads, head, cos, sin)
    assert torch.equal(stacked[:, : heads * head].view(rows, heads, head), expected)
    assert torch.equal(stacked[:, heads * head :], values)  # the values are not touched


def test_rotary_factors_shared_by_every_row(ops):
    stacked, cos, sin = torch.randn(3, 128), torch.randn(1, 1, 64), torch.randn(1, 1, 64)
    each = stacked.clone()
    lean_ops.rotate_(ops, stacked, 2, 64, cos, sin)
    lean_ops.rotate_(ops, each, 2, 64, cos.expand(3, 1, 64), sin.expand(3, 1, 64))
    assert torch.equal(stacked, each)


@pytest.mark.parametrize("n_q,n_kv,length", [(9, 3, 40), (4, 4, 1), (8, 2, 300)])
def test_attention_against_sdpa_with_grouped_heads(ops, n_q, n_kv, length):
    rows, head = 2, 64
    stacked = torch.randn(rows, (n_q + 2 * n_kv) * head)
    key, value = torch.randn(rows, n_kv, length, head), torch.randn(rows, n_kv, length, head)
    query = stacked[:, : n_q * head].view(rows, n_q, 1, head)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, scale=head**-0.5, enable_gqa=True
    )
    out = lean_ops.attend(ops, stacked, key, value, n_q, head**-0.5)
    torch.testing.assert_close(out, expected.reshape(rows, n_q * head), **CLOSE)


def test_attention_reads_a_cache_growing_in_place_without_copying_it(ops, monkeypatch):
    """A growing cache hands out views of a larger buffer (rows and heads strided apart)."""
    rows, n_q, n_kv, length, head = 2, 6, 3, 20, 64
    buffers = [torch.randn(rows, n_kv, length + 16, head) for _ in range(2)]
    key, value = (b[:, :, :length] for b in buffers)
    assert not key.is_contiguous()
    stacked = torch.randn(rows, (n_q + 2 * n_kv) * head)
    expected = lean_ops.attend(ops, stacked, key.contiguous(), value.contiguous(), n_q, 0.125)
    monkeypatch.setattr(torch.Tensor, "contiguous", lambda t: pytest.fail("copied the cache"))
    assert torch.equal(lean_ops.attend(ops, stacked, key, value, n_q, 0.125), expected)


def test_attention_refuses_shapes_it_would_read_past(ops):
    key = torch.randn(1, 3, 5, 64)
    with pytest.raises(ValueError, match="attend"):
        lean_ops.attend(ops, torch.randn(2, 9 * 64), key, key, 9, 0.125)  # 2 rows, 1 cached
    with pytest.raises(ValueError, match="attend"):
        lean_ops.attend(ops, torch.randn(1, 8 * 64), key, key, 8, 0.125)  # 8 heads over 3


def test_silu_mul_on_a_fused_products_halves_and_on_separate_outputs(ops):
    both = torch.randn(3, 2 * 100) * 4
    gate, up = both[:, :100], both[:, 100:]
    expected = torch.nn.functional.silu(gate) * up
    torch.testing.assert_close(lean_ops.silu_mul(ops, gate, up), expected, **CLOSE)
    separate = lean_ops.silu_mul(ops, gate.contiguous(), up.contiguous())
    torch.testing.assert_close(separate, expected, **CLOSE)


# -- the compiled step in a model ------------------------------------------------------------


@pytest.fixture
def compiled(tiny_dir, registry, monkeypatch):
    """The tiny Llama, packed and fused, its lean layers running the compiled loops; calls
    counts the compiled attention calls."""
    loaded = lmwidgets.load_model(str(tiny_dir), name="compiled", cpu_kernels="packed")
    assert lean_decode.use_ops(loaded.model, lean_ops.library()) == 2
    calls = []
    attend = lean_ops.attend
    monkeypatch.setattr(lean_ops, "attend", lambda *a: (calls.append(1), attend(*a))[1])
    return loaded, calls


def _generate(loaded, rows, **settings):
    options = {"max_new_tokens": 12, "logprobs": 2, **settings}
    outcome = generate_batch(
        loaded.model, loaded.tokenizer, rows, GenerationSettings(**options), ignore_eos=True
    )
    assert outcome.error is None
    return outcome.outputs


def _with_and_without(loaded, calls, rows, **settings):
    """(outputs with the compiled loops, outputs with ATen's step) and how many layer steps
    went through the loops."""
    fast = _generate(loaded, rows, **settings)
    taken = len(calls)
    lean_decode.use_ops(loaded.model, None)
    slow = _generate(loaded, rows, **settings)
    assert len(calls) == taken  # ATen's step ran the second time
    return fast, slow, taken


def _scores_close(fast, slow):
    for a, b in zip(fast, slow, strict=True):
        assert a.token_ids == b.token_ids  # greedy tokens equal
        for pa, pb in zip(a.logprobs, b.logprobs, strict=True):
            assert pa.id == pb.id
            assert pa.logprob == pytest.approx(pb.logprob, abs=1e-4)
            assert [t[0] for t in pa.top] == [t[0] for t in pb.top]
            assert [t[2] for t in pa.top] == pytest.approx([t[2] for t in pb.top], abs=1e-4)


def test_a_batch_of_one_gives_transformers_tokens(compiled):
    loaded, calls = compiled
    fast, slow, taken = _with_and_without(loaded, calls, [Row([5, 9, 14, 3, 8, 21, 30])])
    assert taken == 2 * 11  # 2 layers, every step after the prompt's pass
    _scores_close(fast, slow)


@pytest.mark.parametrize(
    "rows",
    [[[5, 9, 14, 3, 8, 21, 30], [7, 2]], [[5, 9, 14, 3], [7, 2, 11, 12], [1, 2, 3, 4]]],
    ids=["left-padded", "one-length"],
)
def test_a_batch_keeps_atens_step_exactly(compiled, rows):
    """The loops run a batch of one (what the load-time timing measured); rows of different
    lengths need a mask besides, and a batch's attention runs on every core in ATen. So a
    batch's numbers are those of the ATen step, bit for bit."""
    loaded, calls = compiled
    fast, slow, taken = _with_and_without(loaded, calls, [Row(ids) for ids in rows])
    assert taken == 0
    assert [(o.token_ids, o.logprobs) for o in fast] == [(o.token_ids, o.logprobs) for o in slow]


def test_the_measured_step_agrees_and_times_both_ways(compiled):
    loaded, _ = compiled
    lean_decode.use_ops(loaded.model, None)
    measured = small_ops_choice.measure(loaded.model, lean_ops.library())
    assert measured["agree"] is True
    assert measured["compiled_layers"] == measured["lean_layers"] == 2
    assert measured["aten_us"] > 0 and measured["compiled_us"] > 0
    assert lean_decode.compiled_layers(loaded.model) == 0  # measuring leaves ATen's step on


@pytest.mark.parametrize(
    "measured,chosen",
    [
        ({"aten_us": 100.0, "compiled_us": 80.0, "agree": True, "compiled_layers": 2}, True),
        ({"aten_us": 100.0, "compiled_us": 97.0, "agree": True, "compiled_layers": 2}, False),
        ({"aten_us": 100.0, "compiled_us": 50.0, "agree": False, "compiled_layers": 2}, False),
        ({"aten_us": 100.0, "compiled_us": 50.0, "agree": True, "compiled_layers": 0}, False),
        ({"aten_us": 100.0, "compiled_us": 50.0, "agree": True, "compiled_layers": 1}, False),
        ({"error": "RuntimeError: no"}, False),
    ],
    ids=["faster", "within-margin", "disagreed", "never-ran", "not-every-layer", "error"],
)
def test_decide_needs_agreement_a_real_run_and_the_margin(measured, chosen):
    assert small_ops_choice.decide({"lean_layers": 2, **measured}) is chosen


def test_a_step_that_cannot_run_is_an_error_entry_not_a_crash(compiled, monkeypatch):
    loaded, _ = compiled

    def broken(*args, **kwargs):
        raise RuntimeError("this model's forward wants pixel values")

    monkeypatch.setattr(loaded.model, "forward", broken)
    measured = small_ops_choice.measure(loaded.model, lean_ops.library())
    assert measured == {"error": "RuntimeError: this model's forward wants pixel values"}
    assert not small_ops_choice.decide(measured)
    assert lean_decode.lean_layers(loaded.model) == 2
    assert lean_decode.compiled_layers(loaded.model) == 0  # left on ATen's step


def _packed_and_fused(model):
    """Timings under which the automatic mode packs every shape and fuses every group."""
    two = {1: 2.0, 4: 2.0}
    one = {1: 1.0, 4: 1.0}
    shapes = {shape: {"plain": two, "packed": one} for shape in kernel_choice._shapes(model)}
    groups = {g.key: {"separate": two, "fused": one} for g in fused_linear.find_groups(model)}
    return shapes, groups


@pytest.mark.parametrize("faster", [True, False])
def test_auto_load_records_the_choice_and_caches_it(tiny_dir, registry, monkeypatch, faster):
    measured = {"aten_us": 100.0, "compiled_us": 50.0 if faster else 99.0, "agree": True}
    measured.update(compiled_layers=2, lean_layers=2)
    monkeypatch.setattr(small_ops_choice, "measure", lambda model, library: dict(measured))
    model = lmwidgets.load_model(str(tiny_dir), name="a", cpu_kernels="plain").model
    shapes, groups = _packed_and_fused(model)
    choice = kernel_choice.choose_kernels(model, "auto", timings=shapes, fusion_timings=groups)
    kind = "compiled" if faster else "aten"
    assert choice.small_ops == kind
    assert ("compiled small ops" in choice.label()) is faster
    assert choice.record()["small_ops"] == kind
    assert choice.record()["small_ops_timings"]["compiled_us"] == measured["compiled_us"]
    assert lean_decode.compiled_layers(model) == (2 if faster else 0)
    monkeypatch.setattr(small_ops_choice, "measure", lambda *a: pytest.fail("measured again"))
    later = lmwidgets.load_model(str(tiny_dir), name="b", cpu_kernels="auto")
    assert later.cpu_kernels.how == "cached" and later.cpu_kernels.small_ops == kind
    assert lean_decode.compiled_layers(later.model) == (2 if faster else 0)
    assert (", compiled small ops (cached)" in later.summary()) is faster


def test_asked_kernels_keep_atens_exact_step(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="p", cpu_kernels="packed")
    assert loaded.cpu_kernels.small_ops == "aten"
    assert lean_decode.compiled_layers(loaded.model) == 0


# -- building the loops ----------------------------------------------------------------------


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """No library built in this process yet, and a cache dir of its own."""
    monkeypatch.setattr(lean_ops, "_STATE", {})
    monkeypatch.setenv("LMWIDGETS_CACHE", str(tmp_path))
    return tmp_path


def test_no_compiler_means_atens_step_and_says_why(fresh_build, monkeypatch):
    monkeypatch.setattr(lean_ops, "_compiler", lambda: None)
    assert lean_ops.library() is None
    assert "no C compiler" in lean_ops.unavailable()


def test_a_failed_build_says_why_and_leaves_no_file(fresh_build, monkeypatch):
    monkeypatch.setattr(lean_ops, "SOURCE", fresh_build / "broken.c")
    (fresh_build / "broken.c").write_text("this is not C\n")
    assert lean_ops.library() is None
    assert "compiling lean_ops.c failed" in lean_ops.unavailable()
    assert not list((fresh_build / "lean-ops").glob("*.so"))


def test_built_once_per_machine_then_loaded(fresh_build, monkeypatch):
    assert lean_ops.library() is not None
    built = list((fresh_build / "lean-ops").glob("*.so"))
    assert len(built) == 1
    monkeypatch.setattr(lean_ops, "_STATE", {})
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("compiled again"))
    assert lean_ops.library() is not None


def test_without_a_compiler_atens_step_runs_and_a_later_load_measures(
    tiny_dir, registry, monkeypatch
):
    library = lean_ops.library()
    monkeypatch.setattr(lean_ops, "_STATE", {"library": None, "why": "no C compiler"})
    model = lmwidgets.load_model(str(tiny_dir), name="n", cpu_kernels="plain").model
    shapes, groups = _packed_and_fused(model)
    choice = kernel_choice.choose_kernels(model, "auto", timings=shapes, fusion_timings=groups)
    assert choice.lean_layers == 2 and choice.small_ops == "aten"
    assert choice.record()["small_ops_timings"] == {"error": "no C compiler"}
    assert lean_decode.compiled_layers(model) == 0
    # a compiler installed since: the next load measures (the missing one was not cached)
    monkeypatch.setattr(lean_ops, "_STATE", {"library": library, "why": None})
    measured = []
    faster = {"aten_us": 2.0, "compiled_us": 1.0, "agree": True}
    faster.update(compiled_layers=2, lean_layers=2)
    monkeypatch.setattr(
        small_ops_choice, "measure", lambda m, lib: measured.append(1) or dict(faster)
    )
    later = lmwidgets.load_model(str(tiny_dir), name="later", cpu_kernels="auto")
    assert measured == [1] and later.cpu_kernels.how == "cached"
    assert later.cpu_kernels.small_ops == "compiled"
    monkeypatch.setattr(small_ops_choice, "measure", lambda *a: pytest.fail("measured again"))
    third = lmwidgets.load_model(str(tiny_dir), name="third", cpu_kernels="auto")
    assert third.cpu_kernels.small_ops == "compiled"  # the later load's timing was cached


@pytest.mark.parametrize("family,compiles", [("Qwen2", True), ("Mistral", True), ("Qwen3", False)])
def test_other_llama_family_layers(family, compiles, tmp_path, registry, monkeypatch):
    """Qwen2's q/k/v biases and Mistral's sliding window (not in reach here) run compiled;
    Qwen3 norms each head before rotating, which the loops do not: ATen's step, exactly."""
    from tests.tiny_models import build_family

    directory, config, _ = build_family(tmp_path / family, family)
    loaded = lmwidgets.load_model(str(directory), name=family, cpu_kernels="packed")
    lean_decode.use_ops(loaded.model, lean_ops.library())
    calls = []
    attend = lean_ops.attend
    monkeypatch.setattr(lean_ops, "attend", lambda *a: (calls.append(1), attend(*a))[1])
    fast, slow, taken = _with_and_without(loaded, calls, [Row([5, 9, 14, 3, 8])])
    assert taken == (11 * config.num_hidden_layers if compiles else 0)
    if compiles:
        _scores_close(fast, slow)
    else:
        assert [(o.token_ids, o.logprobs) for o in fast] == [
            (o.token_ids, o.logprobs) for o in slow
        ]
