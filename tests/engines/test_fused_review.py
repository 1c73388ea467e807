"""Review of the fused sibling layers and the lean decoding step in the ways lmwidgets runs a
model: static and growing caches, sampling, log-probabilities, prefixes, images, choices,
adapters and kernels switched in place. The lean step must give transformers' numbers bit for
bit (the same model with the lean step taken off is the reference), and fusion the numbers of
separate packed layers."""

import gc

import numpy as np
import pytest
import torch

import lmwidgets
from lmwidgets.engines.base import GenerationSettings
from lmwidgets.engines.transformers import cpu_kernels, fused_linear, lean_decode
from lmwidgets.engines.transformers.generation import Row, generate_batch
from lmwidgets.engines.transformers.prefix_cache import PrefixCache
from tests.engines.left_padded import greedy

pytestmark = pytest.mark.skipif(
    not cpu_kernels.supported(), reason="no oneDNN packed linear in this torch"
)

ROWS = [[5, 9, 14, 3, 8, 21, 30], [7, 2], [11, 12, 13]]


@pytest.fixture
def fused(tiny_dir, registry):
    loaded = lmwidgets.load_model(str(tiny_dir), name="fused", cpu_kernels="packed")
    assert lean_decode.lean_layers(loaded.model) == 2
    return loaded


def _lean_and_stock(model, run, lean_steps):
    """``run()`` with the lean step, then with transformers' own layer forward (the same fused
    products underneath); the lean step must have run in the first and not in the second."""
    lean = run()
    taken = len(lean_steps)
    assert taken, "the lean step never ran: nothing was compared"
    lean_decode.remove(model)
    try:
        stock = run()
    finally:
        lean_decode.install(model)
    assert len(lean_steps) == taken
    return lean, stock


def _outputs(outcome):
    assert outcome.error is None
    return [(o.token_ids, o.logprobs, o.finish_reason) for o in outcome.outputs]


# -- 1. the lean step against transformers, bit for bit --------------------------------------


@pytest.mark.parametrize("static", [True, False])
def test_static_and_growing_caches_left_padded_batch(fused, lean_steps, static):
    settings = GenerationSettings(max_new_tokens=10, logprobs=3)

    def run():
        rows = [Row(ids) for ids in ROWS]
        return _outputs(
            generate_batch(
                fused.model, fused.tokenizer, rows, settings, static_cache=static, ignore_eos=True
            )
        )

    lean, stock = _lean_and_stock(fused.model, run, lean_steps)
    assert lean == stock  # tokens and every log-probability, exactly


def test_sampling_with_a_seed_and_a_batch_of_one(fused, lean_steps):
    def run():
        out = []
        for rows in ([Row(ROWS[0])], [Row(ids, temperature=0.9, seed=7) for ids in ROWS]):
            settings = GenerationSettings(max_new_tokens=12, temperature=1.3, seed=3, logprobs=2)
            outcome = generate_batch(fused.model, fused.tokenizer, rows, settings)
            out.append(_outputs(outcome))
        return out

    lean, stock = _lean_and_stock(fused.model, run, lean_steps)
    assert lean == stock


def test_prefix_cache_reuse(fused, lean_steps):
    """A batch of one caches its prompt but the last token (the next run's first pass is then
    one token: a lean step); rows sharing 40 tokens reuse them."""
    shared = [(i * 7) % 90 + 5 for i in range(40)]
    settings = GenerationSettings(max_new_tokens=8, logprobs=2)

    def run():
        cache, out = PrefixCache(), []
        for rows in (
            [[*shared, 3, 4]],
            [[*shared, 3, 4]],
            [[*shared, 3, 4], [*shared, 9], [6, 7, 8]],
        ):
            outcome = generate_batch(
                fused.model,
                fused.tokenizer,
                [Row(ids) for ids in rows],
                settings,
                prefix_cache=cache,
                adapter_keys=["base"] * len(rows),
                ignore_eos=True,
            )
            out.append(_outputs(outcome))
        assert cache.hits >= 1
        return out

    lean, stock = _lean_and_stock(fused.model, run, lean_steps)
    assert lean == stock


def _prompted_lean_and_stock(torch_model, lean_steps, text, **options):
    """Every column's text and tokens of ``lmwidgets.prompt(text, **options)``, lean and not
    (``torch_model``: the loaded model's transformers model)."""

    def run():
        result = lmwidgets.prompt(text, max_new_tokens=8, logprobs=2, display=False, **options)
        return [(r.text, r.tokens_detail) for r in result.results]

    return _lean_and_stock(torch_model, run, lean_steps)


def test_columns_through_prompt(fused, lean_steps):
    lean, stock = _prompted_lean_and_stock(
        fused.model,
        lean_steps,
        "Tell me about {input}",
        model="fused",
        dataset=[{"input": "cats"}, {"input": "the long history of the sea and ships"}],
        compare="zero-shot,cot",
    )
    assert lean == stock


def test_tiny_llava_with_an_image(vlm_dir, registry, lean_steps):
    vlm = lmwidgets.load_model(str(vlm_dir), name="vlm", cpu_kernels="packed", max_images=3)
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    lean, stock = _prompted_lean_and_stock(
        vlm.model,
        lean_steps,
        "What is in the picture?",
        model="vlm",
        images=[image],
        compare="zero-shot,no-image",
    )
    assert lean == stock


def test_choices_scored_with_one_token_steps(fused, lean_steps):
    from lmwidgets.engines.choices import ChoiceRequest

    prompt = fused.render([{"role": "user", "content": "Pick a colour"}])
    other = fused.render([{"role": "user", "content": "Pick a letter, any letter"}])
    # one-letter choices are two tokens here: the choice pass is one token per row (lean)
    requests = [
        ChoiceRequest(prompt, ("a", "b", "c"), None),
        ChoiceRequest(other, ("x", "y"), None),
    ]

    def run():
        return [[s.logprob for s in scores] for scores in fused.score_choices(requests)]

    lean, stock = _lean_and_stock(fused.model, run, lean_steps)
    assert lean == stock


# -- 1b. fusion against separate packed layers ----------------------------------------------


def _odd_llama(directory, intermediate):
    """The tiny Llama with an intermediate size that is not a multiple of the vector width."""
    from transformers import LlamaForCausalLM

    from lmwidgets.engines.transformers.demo_models import (
        build_tokenizer,
        save_pretrained,
        text_config,
    )

    tokenizer = build_tokenizer(chat=False)
    config = text_config(
        __import__("transformers").LlamaConfig, tokenizer, context=256, tie_word_embeddings=False
    )
    config.intermediate_size = intermediate
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 0.2)
    return save_pretrained(directory, model.eval(), tokenizer)


def _scores(model, pad, rows, steps=6):
    return greedy(model, rows, pad, steps)[1]


@pytest.mark.parametrize("intermediate", [128, 100])
def test_fused_batch_equals_separate_packed_layers(tmp_path, registry, intermediate):
    """A gate slice of the fused product is a strided view for more than one row; PyTorch's
    activation then runs its scalar tail on each row's last elements (not only the tensor's),
    which differs in the last bit unless the width is a multiple of the vector loop."""
    directory = _odd_llama(tmp_path / "odd", intermediate)
    loaded = lmwidgets.load_model(str(directory), name="odd", cpu_kernels="packed")
    model, pad = loaded.model, loaded.tokenizer.pad_token_id
    fused_scores = _scores(model, pad, ROWS)
    cpu_kernels.unpack_linear_layers(model)
    cpu_kernels.prepack_linear_layers(model)  # separate packed layers: the numbers before fusion
    assert not fused_linear.fused_groups(model)
    separate_scores = _scores(model, pad, ROWS)
    assert torch.equal(fused_scores, separate_scores)


# -- 2. stale or wrong slices ----------------------------------------------------------------


def test_a_pre_hook_changing_a_siblings_input_in_place_is_not_served_stale():
    """Generation runs in inference mode, where tensors have no version counter: a steering
    pre-hook on k_proj that adds to its input in place must not get a slice computed from the
    old values. A member with a pre-hook splits its group (separate layers from then on)."""

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.q_proj = torch.nn.Linear(32, 32)
            self.k_proj = torch.nn.Linear(32, 16)
            self.v_proj = torch.nn.Linear(32, 16)

    module = Attention()
    (group,) = fused_linear.find_groups(module)
    fused_linear.fuse(group)
    module.k_proj.register_forward_pre_hook(lambda layer, args: args[0].mul_(3))
    with torch.inference_mode():
        x = torch.randn(2, 32)
        original = x.clone()
        q, k, v = module.q_proj(x), module.k_proj(x), module.v_proj(x)
        dense = torch.nn.functional.linear
        torch.testing.assert_close(q, dense(original, module.q_proj.weight, module.q_proj.bias))
        torch.testing.assert_close(k, dense(3 * original, module.k_proj.weight, module.k_proj.bias))
        torch.testing.assert_close(v, dense(3 * original, module.v_proj.weight, module.v_proj.bias))
    assert group.split


def test_an_error_between_siblings_keeps_nothing_and_later_runs_are_right(fused, lean_steps):
    """An error (out of memory, an interrupt) after gate_proj and before up_proj leaves the
    up slice unasked: the product (rows x tokens x 2 intermediate) must not stay held, and the
    next runs are right."""
    model = fused.model
    mlp = model.model.layers[1].mlp
    long_prompt = [(i * 5) % 90 + 3 for i in range(200)]
    calls = {"n": 0}

    def fail_once(module, args, output):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt()

    handle = mlp.gate_proj.register_forward_hook(fail_once)
    try:
        outcome = generate_batch(
            model, fused.tokenizer, [Row(long_prompt)], GenerationSettings(max_new_tokens=4)
        )
    finally:
        handle.remove()
    assert isinstance(outcome.error, KeyboardInterrupt)
    del outcome  # the error's traceback holds the layer's tensors while it is kept
    gc.collect()
    held = [g for g in fused_linear.fused_groups(model) if g.pending is not None]
    assert held == [], f"{[g.parent for g in held]} still hold a prompt's product"


def test_interrupted_runs_do_not_turn_fusion_off_for_good(fused):
    """Two interrupted runs (each leaving one group's slice unasked) are not a sibling reading
    another input: the group should stay fused."""
    model = fused.model
    mlp = model.model.layers[1].mlp
    (group,) = [g for g in fused_linear.fused_groups(model) if mlp.gate_proj in g.members]
    for _ in range(fused_linear.MISSES_BEFORE_SPLIT + 1):
        handle = mlp.gate_proj.register_forward_hook(
            lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())
        )
        try:
            generate_batch(
                model, fused.tokenizer, [Row(ROWS[0])], GenerationSettings(max_new_tokens=2)
            )
        finally:
            handle.remove()
        gc.collect()  # the interrupt's traceback is gone
        generate_batch(model, fused.tokenizer, [Row(ROWS[0])], GenerationSettings(max_new_tokens=2))
    assert not group.split


def test_a_layer_class_of_the_same_name_from_elsewhere_keeps_its_forward(tiny_dir, registry):
    """Remote code often ships its own ``LlamaDecoderLayer`` (another forward, even another
    signature): only transformers' own class may get the lean step."""
    from transformers.models.llama import modeling_llama

    class LlamaDecoderLayer(modeling_llama.LlamaDecoderLayer):
        def forward(self, hidden_states, *args, **kwargs):
            out = super().forward(hidden_states, *args, **kwargs)
            return hidden_states + 0.5 * (out - hidden_states)  # a scaled residual

    loaded = lmwidgets.load_model(str(tiny_dir), name="custom", cpu_kernels="plain")
    for layer in loaded.model.model.layers:
        layer.__class__ = LlamaDecoderLayer
    reference = _scores(loaded.model, loaded.tokenizer.pad_token_id, ROWS[:1])
    loaded.set_cpu_kernels("packed")
    got = _scores(loaded.model, loaded.tokenizer.pad_token_id, ROWS[:1])
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)
    assert lean_decode.lean_layers(loaded.model) == 0


# -- 4. adapters -----------------------------------------------------------------------------


@pytest.mark.parametrize("targets", [("v_proj",), ("k_proj", "up_proj"), ("up_proj",)])
def test_an_adapter_on_a_sibling_other_than_the_first_is_not_skipped(
    fused, tiny_dir, tmp_path, lean_steps, targets
):
    """peft wraps only the targeted layers: q_proj/gate_proj can stay plain fused layers while
    v_proj or up_proj carry the adapter; the lean step must not compute them from the base
    weights alone."""
    from tests.tiny_models import build_lora

    adapter = build_lora(tiny_dir, tmp_path / "lora", targets=targets)
    lmwidgets.load_adapter(str(adapter), name="style", model="fused")
    lmwidgets.load_model(str(tiny_dir), name="plain", cpu_kernels="plain")
    lmwidgets.load_adapter(str(adapter), name="style", model="plain")
    texts = {}
    for name in ("fused", "plain"):
        result = lmwidgets.prompt(
            "Hello there",
            model=name,
            adapters="base,style",  # a mixed batch: lmwidgets' batched LoRA
            max_new_tokens=12,
            display=False,
        )
        texts[name] = [r.text for r in result.results]
    assert texts["fused"] == texts["plain"]
    assert lean_steps == []  # transformers' forward ran the wrapped layers


def test_adapter_attached_detached_and_kernels_switched_in_place(fused, tiny_dir, tmp_path):
    from tests.tiny_models import build_lora

    adapter = build_lora(tiny_dir, tmp_path / "lora", targets=("q_proj", "v_proj", "up_proj"))
    lmwidgets.load_model(str(tiny_dir), name="plain", cpu_kernels="plain")

    def answers(name, adapters="base,style"):
        result = lmwidgets.prompt(
            "Hello there", model=name, adapters=adapters, max_new_tokens=12, display=False
        )
        return [r.text for r in result.results]

    for name in ("fused", "plain"):
        lmwidgets.load_adapter(str(adapter), name="style", model=name)
    want = answers("plain")
    assert answers("fused") == want
    fused.set_cpu_kernels("plain")
    assert not fused_linear.fused_groups(fused.model) and not lean_decode.lean_layers(fused.model)
    assert answers("fused") == want
    fused.set_cpu_kernels("packed")
    assert answers("fused") == want
    lmwidgets.unload_adapter("style", model="fused")
    lmwidgets.unload_adapter("style", model="plain")
    want = answers("plain", adapters=None)
    assert answers("fused", adapters=None) == want
    fused.set_cpu_kernels("plain")
    assert answers("fused", adapters=None) == want
    fused.set_cpu_kernels("packed")
    assert lean_decode.lean_layers(fused.model) == 2
    assert answers("fused", adapters=None) == want


@pytest.mark.parametrize("static", [True, False])
def test_a_one_token_prompt_is_a_lean_first_pass_on_an_empty_cache(fused, lean_steps, static):
    settings = GenerationSettings(max_new_tokens=6, logprobs=2)

    def run():
        rows = [Row([5])]
        return _outputs(
            generate_batch(
                fused.model, fused.tokenizer, rows, settings, static_cache=static, ignore_eos=True
            )
        )

    lean, stock = _lean_and_stock(fused.model, run, lean_steps)
    assert len(lean_steps) == 6 * 2  # the prompt's pass too: one token, an empty cache
    assert lean == stock


def test_auto_fusion_of_layers_the_plan_keeps_plain_is_close_to_plain(tiny_dir, registry):
    """A fused group runs oneDNN's product even where the plan keeps its layers on PyTorch's:
    the last bits may differ, as packing's do (greedy answers are checked equal in benchmarks)."""
    from lmwidgets.engines.transformers import kernel_choice

    plain = lmwidgets.load_model(str(tiny_dir), name="plain", cpu_kernels="plain")
    auto = lmwidgets.load_model(str(tiny_dir), name="auto", cpu_kernels="plain")
    shapes = kernel_choice._shapes(auto.model)
    slower = {s: {"plain": {1: 1.0, 4: 1.0}, "packed": {1: 2.0, 4: 2.0}} for s in shapes}
    keys = {group.key for group in fused_linear.find_groups(auto.model)}
    faster = {k: {"separate": {1: 2.0, 4: 2.0}, "fused": {1: 1.0, 4: 1.0}} for k in keys}
    choice = kernel_choice.choose_kernels(auto.model, "auto", timings=slower, fusion_timings=faster)
    assert choice.kernel == "plain" and all(choice.fusion.values())
    pad = plain.tokenizer.pad_token_id
    for rows in (ROWS[:1], ROWS):
        fused_scores, plain_scores = _scores(auto.model, pad, rows), _scores(plain.model, pad, rows)
        torch.testing.assert_close(fused_scores, plain_scores, rtol=1e-4, atol=1e-4)


def test_a_norm_with_its_own_forward_runs_it(fused, lean_steps):
    """A hub kernel swapped in by ``kernels.kernelize`` replaces an RMSNorm instance's forward:
    the layer must then run that module, not the lean step's copy of the formula."""
    import types

    layer = fused.model.model.layers[0]
    norm = layer.post_attention_layernorm

    def doubled(self, hidden_states):
        return 2.0 * type(self).forward(self, hidden_states)

    def run():
        return greedy(fused.model, ROWS[:1], fused.tokenizer.pad_token_id, steps=4)

    plain = run()
    assert len(lean_steps) > 0
    norm.forward = types.MethodType(doubled, norm)
    try:
        taken = len(lean_steps)
        swapped = run()
        lean_decode.remove(fused.model)
        try:
            stock = run()
        finally:
            lean_decode.install(fused.model)
    finally:
        del norm.forward
    assert all(map(torch.equal, swapped, stock))  # the swapped-in forward ran, as in transformers'
    assert not torch.equal(swapped[1], plain[1])
    layers = len(fused.model.model.layers)
    assert len(lean_steps) - taken == 3 * (layers - 1)  # the other layers stayed lean
