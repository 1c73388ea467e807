"""Benchmarks: lmwidgets against the plain transformers way of doing the same thing.

    python -m benchmarks.run            # full run on the default model -> build/bench.json
    python -m benchmarks.run --quick    # a smoke run on a tiny random model (CI)

Each benchmark measures both sides in the same process, interleaved, and reports a ratio (these
machines are shared and noisy, so absolute times mean little). Each also checks that lmwidgets'
greedy output equals the baseline's, so speed never buys a different answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measurement:
    """One row of the results table."""

    benchmark: str
    baseline: float
    lmwidgets: float
    unit: str
    ratio: float
    target: str
    met: bool | None  # None: a table row without a target
    outputs_match: bool | None
    details: dict[str, Any] = field(default_factory=dict)


def _ids(variant) -> list[int]:
    """The token ids of a prepared variant's prompt (the transformers engine's payload)."""
    return list(variant.rendered.payload[0])


def _load(quick: bool):
    import lmwidgets

    if quick:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_models import build_llama

        directory = build_llama(Path(tempfile.mkdtemp()) / "tiny", layers=2, context=2048)
        return lmwidgets.load_model(str(directory), name="bench-tiny")
    return lmwidgets.load_model(name="bench-default")


def _variants(loaded, n_tokens: int):
    from lmwidgets.engines.registry import ModelRegistry
    from lmwidgets.engines.transformers.generation import GenerationSettings
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import prepare

    registry = ModelRegistry()
    registry.add(loaded)
    examples = [("What is 2 + 3?", "5"), ("What is 10 - 4?", "6")]
    settings = GenerationSettings(max_new_tokens=n_tokens)
    plan = build_variants(
        "What is 7 + 8?",
        registry=registry,
        model=loaded.name,
        system=None,
        settings=settings,
        compare="zero-shot,few-shot,cot",
        examples=examples,
    )
    extra = build_variants(
        "What is 7 + 8?",
        registry=registry,
        model=loaded.name,
        system="Answer briefly.",
        settings=settings,
    ).variants[0]
    extra.label = "zero-shot+system"
    variants = [*plan.variants, extra]
    for variant in variants:
        prepare(variant, [])
    return variants


def _plain_generate(loaded, input_ids: list[int], n_tokens: int, dense: bool = True) -> list[int]:
    """The plain transformers way: one ``generate`` call for one prompt.

    ``dense`` runs PyTorch's own linear layers (the untouched transformers model); without it
    the model keeps lmwidgets' packed CPU kernels, to isolate another cost such as streaming.
    """
    import contextlib

    import torch

    from lmwidgets.engines.transformers.cpu_kernels import dense_linear

    ids = torch.tensor([input_ids], device=loaded.device)
    kernels = dense_linear(loaded.model) if dense else contextlib.nullcontext()
    with torch.inference_mode(), kernels:
        out = loaded.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n_tokens,
            min_new_tokens=n_tokens,  # exactly n_tokens, like lmwidgets' ignore_eos
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    return out[0, ids.shape[1] :].tolist()


def _texts(loaded, token_lists):
    return [loaded.tokenizer.decode(t, skip_special_tokens=True) for t in token_lists]


def bench_side_by_side(loaded, n_tokens: int, repeats: int) -> Measurement:
    """4 variants in one batch (lmwidgets) vs one ``generate`` after another (baseline)."""
    from lmwidgets.run.runner import run_variants

    variants = _variants(loaded, n_tokens)
    base_times, lmw_times = [], []
    baseline_tokens = comparison = None
    for _ in range(repeats + 1):  # the first round warms up
        started = time.perf_counter()
        baseline_tokens = [_plain_generate(loaded, _ids(v), n_tokens) for v in variants]
        base_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        comparison = run_variants(variants, view=None, ignore_eos=True)
        lmw_times.append(time.perf_counter() - started)
    total = n_tokens * len(variants)
    base_tps = total / statistics.median(base_times[1:])
    lmw_tps = total / statistics.median(lmw_times[1:])
    match = _texts(loaded, baseline_tokens) == [r.text for r in comparison.results]
    ratio = lmw_tps / base_tps
    return Measurement(
        "side by side: 4 variants batched vs sequential generate",
        round(base_tps, 2),
        round(lmw_tps, 2),
        "tok/s",
        round(ratio, 2),
        ">= 3x",
        ratio >= 3.0,
        match,
        {"variants": [v.label for v in variants], "new_tokens_per_variant": n_tokens},
    )


#: The seed every column of the temperature sweep samples with.
SWEEP_SEED = 1234
SWEEP_TEMPERATURES = (0.3, 0.7, 1.0, 1.3)

#: Eight wordings of one question: prompt variants a user compares side by side.
WORDINGS = (
    "What is the capital of France?",
    "Name the capital city of France.",
    "Which city is the capital of France?",
    "France's capital is which city?",
    "Tell me the capital of France.",
    "In one word: what is the capital of France?",
    "Quick question: what is France's capital city?",
    "Could you tell me which city is the capital of France?",
)


def _column(loaded, label: str, text: str, n_tokens: int, temperature: float = 0.0, seed=None):
    """One column: ``text`` as the user's message to ``loaded``, with its own sampling."""
    from lmwidgets.core.variant import Variant
    from lmwidgets.engines.base import GenerationSettings

    settings = GenerationSettings(max_new_tokens=n_tokens, temperature=temperature, seed=seed)
    return Variant(label, [{"role": "user", "content": text}], loaded, settings)


def _batched_vs_alone(variants, n_tokens: int, repeats: int) -> tuple[float, float, bool]:
    """(tok/s run one after another, tok/s in one batch, every batched column's text equals its
    run alone): both through ``run_variants``, interleaved, median after a warm-up round."""
    from lmwidgets.run.runner import run_variants

    alone_times, batched_times = [], []
    alone: list[str] = []
    batched: list[str] = []
    for _ in range(repeats + 1):  # the first round warms up
        started = time.perf_counter()
        alone = [run_variants([v], ignore_eos=True).results[0].text for v in variants]
        alone_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        batched = [r.text for r in run_variants(variants, ignore_eos=True).results]
        batched_times.append(time.perf_counter() - started)
    total = n_tokens * len(variants)
    alone_tps = total / statistics.median(alone_times[1:])
    batched_tps = total / statistics.median(batched_times[1:])
    return alone_tps, batched_tps, alone == batched


def bench_temperature_sweep(loaded, n_tokens: int, repeats: int) -> Measurement:
    """4 columns differing only in temperature, same seed: one batch (each row samples with its
    own seed) vs four separate runs; each batched column's text must equal its run alone."""
    variants = [
        _column(loaded, f"t={t}", WORDINGS[0], n_tokens, temperature=t, seed=SWEEP_SEED)
        for t in SWEEP_TEMPERATURES
    ]
    alone, batched, match = _batched_vs_alone(variants, n_tokens, repeats)
    ratio = batched / alone
    return Measurement(
        "temperature sweep: 4 temperatures, same seed, one batch vs 4 runs",
        round(alone, 2),
        round(batched, 2),
        "tok/s",
        round(ratio, 2),
        ">= 2.5x",
        ratio >= 2.5,
        match,
        {
            "temperatures": list(SWEEP_TEMPERATURES),
            "seed": SWEEP_SEED,
            "new_tokens_per_column": n_tokens,
        },
    )


def bench_prompt_variants(loaded, n_tokens: int, repeats: int) -> Measurement:
    """8 wordings of one question (greedy): one batch vs one run after another; the texts must
    be equal."""
    variants = [
        _column(loaded, f"wording {i + 1}", text, n_tokens) for i, text in enumerate(WORDINGS)
    ]
    alone, batched, match = _batched_vs_alone(variants, n_tokens, repeats)
    ratio = batched / alone
    return Measurement(
        "prompt variants: 8 wordings, one batch vs one run after another",
        round(alone, 2),
        round(batched, 2),
        "tok/s",
        round(ratio, 2),
        ">= 3x",
        ratio >= 3.0,
        match,
        {"variants": len(variants), "new_tokens_per_column": n_tokens},
    )


class _HeadlessView:
    """The live view's work without a notebook: a real widget model updated while streaming."""

    def __init__(self, variants):
        from lmwidgets.notebook.live import LiveView

        self.view = LiveView(variants, "bench", show=False)
        self.updates = 0

    def start(self, stream, stop, notes):
        self.view.start(stream, stop, notes)

    def progress(self, done, total):
        self.view.progress(done, total)

    def update_running(self, stream):
        self.updates += 1
        self.view.update_running(stream)

    def finish(self, comparison, message=""):
        self.view.finish(comparison, message)


def bench_streaming(loaded, n_tokens: int, repeats: int) -> Measurement:
    """Streaming into the widget (coalesced updates) vs plain ``generate``, one prompt.

    Both sides use the same model and kernels, so the ratio is the cost of streaming alone.
    """
    from lmwidgets.run.runner import run_variants

    variant = _variants(loaded, n_tokens)[0]
    base_times, lmw_times, updates = [], [], []
    baseline_tokens = comparison = None
    for _ in range(repeats + 1):
        started = time.perf_counter()
        baseline_tokens = _plain_generate(loaded, _ids(variant), n_tokens, dense=False)
        base_times.append(time.perf_counter() - started)
        view = _HeadlessView([variant])
        started = time.perf_counter()
        comparison = run_variants([variant], view=view, ignore_eos=True)
        lmw_times.append(time.perf_counter() - started)
        updates.append(view.updates)
    base, lmw = statistics.median(base_times[1:]), statistics.median(lmw_times[1:])
    ratio = lmw / base
    return Measurement(
        "streaming into the widget vs plain generate (time)",
        round(base, 3),
        round(lmw, 3),
        "s",
        round(ratio, 3),
        "<= 1.05x",
        ratio <= 1.05,
        _texts(loaded, [baseline_tokens]) == [comparison.results[0].text],
        {"widget_updates": updates[-1], "updates_per_second": round(updates[-1] / lmw, 1)},
    )


def _random_adapter(loaded, directory: Path, seed: int, rank: int = 16) -> Path:
    """Save a LoRA adapter with random weights for ``loaded`` (the model is left unchanged)."""
    import torch
    from peft import LoraConfig, PeftModelForCausalLM
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
    )
    wrapper = PeftModelForCausalLM(loaded.model, config, adapter_name="tmp")
    try:
        with torch.no_grad():
            for name, param in wrapper.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
        state = get_peft_model_state_dict(wrapper, adapter_name="tmp")
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            str(directory / "adapter_model.safetensors"),
        )
        config.save_pretrained(str(directory))
    finally:
        loaded.model = wrapper.unload()
    return directory


def bench_adapters(loaded, n_tokens: int, repeats: int) -> list[Measurement]:
    """Base + 3 adapters in one mixed batch vs ``set_adapter`` between runs; and the batch's cost
    against the same batch on the model without adapters."""
    import torch

    from lmwidgets.engines.transformers.adapters import (
        generation_model,
        load_adapter,
        unload_adapter,
    )
    from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

    variant = _variants(loaded, n_tokens)[0]
    settings = GenerationSettings(max_new_tokens=n_tokens)
    plain_rows = [Row(_ids(variant)) for _ in range(4)]

    def plain_batch():
        return generate_batch(
            loaded.model,
            loaded.tokenizer,
            plain_rows,
            settings,
            device=loaded.device,
            ignore_eos=True,
        )

    plain_batch()
    plain_times = []
    for _ in range(repeats):
        started = time.perf_counter()
        plain_batch()
        plain_times.append(time.perf_counter() - started)
    root = Path(tempfile.mkdtemp())
    names = ["a1", "a2", "a3"]
    paths = [_random_adapter(loaded, root / name, seed) for seed, name in enumerate(names)]
    attach_times = []
    for path, name in zip(paths, names, strict=True):
        started = time.perf_counter()
        load_adapter(loaded, path, name=name)
        attach_times.append(time.perf_counter() - started)
    peft_model = generation_model(loaded)
    mixed_rows = [Row(_ids(variant), None), *(Row(_ids(variant), n) for n in names)]
    try:

        def mixed():
            return generate_batch(
                peft_model,
                loaded.tokenizer,
                mixed_rows,
                settings,
                device=loaded.device,
                ignore_eos=True,
                route_adapters=True,
            )

        def one_by_one():
            outputs = []
            with torch.inference_mode():
                for name in [None, *names]:
                    ids = torch.tensor([_ids(variant)], device=loaded.device)
                    kwargs = dict(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        max_new_tokens=n_tokens,
                        min_new_tokens=n_tokens,
                        do_sample=False,
                        pad_token_id=loaded.tokenizer.pad_token_id,
                    )
                    if name is None:
                        with peft_model.disable_adapter():
                            out = peft_model.generate(**kwargs)
                    else:
                        peft_model.set_adapter(name)
                        out = peft_model.generate(**kwargs)
                    outputs.append(out[0, ids.shape[1] :].tolist())
            return outputs

        mixed()
        mixed_times, seq_times = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            batch = mixed()
            mixed_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            sequential = one_by_one()
            seq_times.append(time.perf_counter() - started)
    finally:
        for name in names:
            unload_adapter(loaded, name)
    total = 4 * n_tokens
    seq_tps, mixed_tps = (
        total / statistics.median(seq_times),
        total / statistics.median(mixed_times),
    )
    same = [o.token_ids for o in batch.outputs] == sequential
    cost = statistics.median(mixed_times) / statistics.median(plain_times)
    return [
        Measurement(
            "adapters: base + 3 LoRA in one batch vs set_adapter between runs",
            round(seq_tps, 2),
            round(mixed_tps, 2),
            "tok/s",
            round(mixed_tps / seq_tps, 2),
            ">= 3x",
            mixed_tps / seq_tps >= 3.0,
            same,
            {"rank": 16, "targets": "q,k,v,o"},
        ),
        Measurement(
            "adapters: mixed batch vs the same batch without adapters (time)",
            round(statistics.median(plain_times), 3),
            round(statistics.median(mixed_times), 3),
            "s",
            round(cost, 3),
            "<= 1.3x",
            cost <= 1.3,
            None,
        ),
        Measurement(
            "adapters: attach a rank-16 adapter (no reload)",
            1.0,
            round(max(attach_times), 3),
            "s",
            round(max(attach_times), 3),
            "< 1 s",
            max(attach_times) < 1.0,
            None,
        ),
    ]


def _bandwidth_bytes_per_second(dtype, device: str = "cpu") -> float:
    """Memory bandwidth from a large matrix-vector product (reads the whole matrix once)."""
    import torch

    size = 16384 if device.startswith("cuda") else 8192
    matrix = torch.randn(size, size).to(device=device, dtype=dtype)
    vector = torch.randn(size).to(device=device, dtype=dtype)

    def product() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        matrix @ vector
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started

    for _ in range(2):
        product()
    return matrix.numel() * matrix.element_size() / min(product() for _ in range(8))


def bandwidth_bound(loaded, n_tokens: int) -> tuple[float, float, float]:
    """(bound in tokens/s, bandwidth in bytes/s, bytes read per token) for batch-1 decoding of
    the benchmark prompt: every weight once per token, plus the KV cache so far."""
    variant = _variants(loaded, n_tokens)[0]
    config = loaded.model.config
    first = next(loaded.model.parameters())
    kv_per_token = (
        2
        * config.num_hidden_layers
        * getattr(config, "num_key_value_heads", config.num_attention_heads)
        * (config.hidden_size // config.num_attention_heads)
        * first.element_size()
    )
    context = len(_ids(variant)) + n_tokens / 2
    # Each weight is read once per token (the packed copy replaces the dense one in the matmuls).
    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    bytes_per_token = weights + kv_per_token * context
    bandwidth = _bandwidth_bytes_per_second(first.dtype, loaded.device)
    return bandwidth / bytes_per_token, bandwidth, bytes_per_token


def decode_speed(loaded, n_tokens: int, runs: int = 3) -> tuple[float, list[int]]:
    """Best batch-1 decode tokens/s after the first token over ``runs`` runs (the first of 3
    warms up or compiles) and the last run's tokens."""
    from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

    variant = _variants(loaded, n_tokens)[0]
    best, tokens = 0.0, []
    for _ in range(runs):
        outcome = generate_batch(
            loaded.model,
            loaded.tokenizer,
            [Row(_ids(variant))],
            GenerationSettings(max_new_tokens=n_tokens),
            device=loaded.device,
            ignore_eos=True,
            static_cache=bool(loaded.extras.get("static_cache")),
        )
        output = outcome.outputs[0]
        decode = output.seconds - (output.first_token_seconds or 0.0)
        if decode > 0:
            best = max(best, (len(output.token_ids) - 1) / decode)
        tokens = output.token_ids
    return best, tokens


def linear_layers_speed(loaded, repeats: int = 5) -> float:
    """Tokens/s if a batch-1 decoding step did nothing but the model's linear layers (each once,
    through the same forward the model uses): the ceiling for any decoding loop with these
    matrix-vector kernels, whatever it does about the rest of the step."""
    import torch

    from lmwidgets.engines.transformers.fused_linear import fused_groups

    siblings = {id(m) for g in fused_groups(loaded.model) for m in g.members[1:]}
    layers = [  # a fused group's product is called once, through its first member
        m
        for m in loaded.model.modules()
        if isinstance(m, torch.nn.Linear) and id(m) not in siblings
    ]
    inputs = [torch.randn(1, 1, m.in_features, dtype=m.weight.dtype) for m in layers]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            started = time.perf_counter()
            for layer, x in zip(layers, inputs, strict=True):
                group = getattr(layer, "_lmw_group", None)
                if group is not None:
                    group.product(x)
                else:
                    layer(x.to(layer.weight.device))
            if loaded.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
    return 1.0 / best


def bench_roofline(loaded, n_tokens: int) -> Measurement:
    """Batch-1 decode speed as a fraction of the memory-bandwidth bound, measured in pairs: a
    decode run, then the bandwidth probe, 3 times; the median pair's ratio is reported (on a
    shared machine whose speed drifts by 20% within a minute, each pair shares the machine's
    state, where the best decode over the best probe compared different moments)."""
    decode_speed(loaded, n_tokens, runs=1)  # warm-up
    pairs = []
    for _ in range(3):
        speed, _ = decode_speed(loaded, n_tokens, runs=1)
        bound, bandwidth, bytes_per_token = bandwidth_bound(loaded, n_tokens)
        pairs.append((speed / bound, speed, bound, bandwidth))
    fraction, best, bound, bandwidth = sorted(pairs)[len(pairs) // 2]
    ceiling = linear_layers_speed(loaded)
    return Measurement(
        f"decode speed vs bandwidth bound (batch 1, {loaded.dtype})",
        round(bound, 2),
        round(best, 2),
        "tok/s",
        float(f"{fraction:.3g}"),  # 3 significant digits: a tiny model is far below
        ">= 0.60 of bound",
        fraction >= 0.6,
        None,
        {
            "bandwidth_GBps": round(bandwidth / 1e9, 2),
            "bytes_per_token_MB": round(bytes_per_token / 1e6, 1),
            "linear_layers_only_tok_s": round(ceiling, 2),
            "linear_layers_only_fraction": round(ceiling / bound, 3),
            "decode_vs_linear_layers_only": round(best / ceiling, 3),
            "pairs": [[round(f, 3), round(d, 2), round(b, 2)] for f, d, b, _ in pairs],
        },
    )


def _large_random_llama(directory: Path, tokenizer) -> Path:
    """A ~760M-parameter Llama (hidden 1536, 20 layers, 49,152 tokens, tied embeddings) with
    random weights, built from a config and saved as safetensors with the default model's
    tokenizer: the default model's 576-wide matrices are too small for matrix-vector kernels
    to stream at full bandwidth, so the bound is also measured at a size people prompt."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmwidgets.engines.transformers.demo_models import save_pretrained, token_ids

    config = LlamaConfig(
        hidden_size=1536,
        intermediate_size=6144,
        num_hidden_layers=20,
        num_attention_heads=24,
        num_key_value_heads=6,
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        max_position_embeddings=2048,
        **token_ids(tokenizer),
    )
    torch.manual_seed(0)
    return save_pretrained(directory, LlamaForCausalLM(config), tokenizer)


def bench_roofline_large(loaded, n_tokens: int) -> Measurement:
    """The bandwidth bound on a 760M random Llama, loaded through lmwidgets (kernels chosen
    at load), against its bound; tokens equal to plain transformers' greedy ones."""
    import shutil

    import lmwidgets

    directory = Path(tempfile.mkdtemp(prefix="lmw-bench-large-"))
    try:
        large = lmwidgets.load_model(
            str(_large_random_llama(directory, loaded.tokenizer)), name="bench-large"
        )
        try:
            tokens = max(8, n_tokens // 4)  # about 0.15 s a token: keep the row short
            best, produced = decode_speed(large, tokens)
            ids = _ids(_variants(large, tokens)[0])
            plain = _plain_generate(large, ids, tokens)
            bound, bandwidth, bytes_per_token = bandwidth_bound(large, tokens)
        finally:
            lmwidgets.REGISTRY.remove("bench-large")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    fraction = best / bound
    return Measurement(
        "decode speed vs bandwidth bound, 760M Llama (batch 1, float32, random weights)",
        round(bound, 2),
        round(best, 2),
        "tok/s",
        float(f"{fraction:.3g}"),
        ">= 0.60 of bound",
        fraction >= 0.6,
        produced == plain,
        {
            "bandwidth_GBps": round(bandwidth / 1e9, 2),
            "bytes_per_token_MB": round(bytes_per_token / 1e6, 1),
            "cpu_kernels": large.cpu_kernels.label() if large.cpu_kernels else None,
        },
    )


def _decode_seconds_per_token(loaded, rows: list[list[int]], n_tokens: int) -> tuple[float, list]:
    """lmwidgets' seconds per decoding step after the first token (one batch of ``rows``) and
    every row's tokens."""
    from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

    outcome = generate_batch(
        loaded.model,
        loaded.tokenizer,
        [Row(ids) for ids in rows],
        GenerationSettings(max_new_tokens=n_tokens),
        device=loaded.device,
        ignore_eos=True,
        prefix_cache=None,
    )
    output = outcome.outputs[0]
    steps = max(1, len(output.token_ids) - 1)
    return (output.seconds - (output.first_token_seconds or 0.0)) / steps, [
        o.token_ids for o in outcome.outputs
    ]


class _StepTimes:
    """A streamer that notes when each new token of ``generate`` arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self) -> None:
        pass

    def per_step(self) -> float:
        return (self.times[-1] - self.times[0]) / max(1, len(self.times) - 1)


def _plain_decode_seconds_per_token(loaded, ids: list[int], n_tokens: int) -> tuple[float, list]:
    """Plain transformers' batch-1 seconds per decoding step (PyTorch's own linear layers)."""
    import torch

    from lmwidgets.engines.transformers.cpu_kernels import dense_linear

    tensor = torch.tensor([ids], device=loaded.device)
    streamer = _StepTimes()
    with torch.inference_mode(), dense_linear(loaded.model):
        out = loaded.model.generate(
            input_ids=tensor,
            attention_mask=torch.ones_like(tensor),
            max_new_tokens=n_tokens,
            min_new_tokens=n_tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
            streamer=streamer,
        )
    return streamer.per_step(), out[0, tensor.shape[1] :].tolist()


def bench_decode(loaded, n_tokens: int, repeats: int) -> list[Measurement]:
    """Batch-1 decoding against plain transformers, and what a 4-row step costs against a
    1-row step (the 4 side-by-side variants), interleaved, best of ``repeats``."""
    variants = _variants(loaded, n_tokens)
    rows = [_ids(v) for v in variants]
    plain, ours, one, four = [], [], [], []
    plain_tokens = ours_tokens = batch_tokens = None
    for _ in range(repeats + 1):  # the first round warms up
        seconds, plain_tokens = _plain_decode_seconds_per_token(loaded, rows[0], n_tokens)
        plain.append(seconds)
        seconds, (ours_tokens,) = _decode_seconds_per_token(loaded, rows[:1], n_tokens)
        ours.append(seconds)
        one.append(seconds)
        seconds, batch_tokens = _decode_seconds_per_token(loaded, rows, n_tokens)
        four.append(seconds)
    alone = [_plain_generate(loaded, ids, n_tokens) for ids in rows]
    best_plain, best_ours = min(plain[1:]), min(ours[1:])
    cost = min(four[1:]) / min(one[1:])
    return [
        Measurement(
            f"batch-1 decode vs plain transformers ({loaded.dtype}, tok/s after the first)",
            round(1 / best_plain, 2),
            round(1 / best_ours, 2),
            "tok/s",
            round(best_plain / best_ours, 2),
            ">= 1.0x",
            best_plain / best_ours >= 1.0,
            plain_tokens == ours_tokens,
        ),
        Measurement(
            "decoding step: 4 variants in one batch vs 1 row (time per step)",
            round(min(one[1:]) * 1e3, 2),
            round(min(four[1:]) * 1e3, 2),
            "ms",
            round(cost, 2),
            "<= 1.5x",
            cost <= 1.5,
            batch_tokens == alone,
        ),
    ]


def _in_new_process(code: str, *args: str, stdin: str | None = None) -> str:
    """Run Python ``code`` in a new interpreter; the last line it printed."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


_IDLE_KERNEL = """
import asyncio
from lmwidgets.engines import background_import, warm_up

async def idle():  # a kernel's event loop between cells, after %load_ext
    warm_up()
    while background_import.state().seconds is None:
        await asyncio.sleep(0.05)

asyncio.run(idle())
"""


def _load_code(warm: bool) -> str:
    """Python for a new process that loads the default model and prints [seconds, steps, the
    idle-time import's seconds]; ``warm``: first let an event loop import the libraries as a
    kernel does after ``%load_ext``."""
    return (
        "import json, time, lmwidgets\n"
        + (_IDLE_KERNEL if warm else "")
        + "t = time.perf_counter(); m = lmwidgets.load_model(); seconds = time.perf_counter() - t\n"
        "from lmwidgets.engines import background_import as b\n"
        "print(json.dumps([seconds, m.extras.get('load_steps_s', {}), b.state().seconds]))\n"
    )


def _median_load(warm: bool) -> tuple[float, dict, float | None]:
    runs = sorted(
        (json.loads(_in_new_process(_load_code(warm))) for _ in range(3)), key=lambda r: r[0]
    )
    return tuple(runs[1])  # type: ignore[return-value]


def bench_load_time() -> list[Measurement]:
    """Loading the default model in a fresh process: GGUF via transformers vs lmwidgets' cache,
    as a notebook does it (torch and transformers imported while the kernel was idle after
    ``%load_ext``) and cold (the load imports them itself)."""
    code_hf = (
        "import time, torch; from transformers import AutoModelForCausalLM, AutoTokenizer; "
        "from lmwidgets.engines.transformers.sources import default_model_source as d; s = d(); t = time.perf_counter(); "
        "AutoTokenizer.from_pretrained(s.location, gguf_file=s.gguf_file); "
        "AutoModelForCausalLM.from_pretrained(s.location, gguf_file=s.gguf_file, dtype=torch.float32); "
        "print(time.perf_counter() - t)"
    )

    # A first load makes sure the cache exists (and the CPU kernels were chosen and cached) and
    # names the modules that loading imports.
    modules = _in_new_process(_LOADED_MODULES)
    warm, warm_steps, background = _median_load(warm=True)
    cold, cold_steps, _ = _median_load(warm=False)
    base = float(_in_new_process(code_hf))
    imports = float(_in_new_process(_IMPORT_MODULES, stdin=modules))
    return [
        Measurement(
            "load default model after %load_ext (libraries imported while the kernel was idle)",
            round(base, 2),
            round(warm, 2),
            "s",
            round(warm / base, 3),
            "<= 3 s",
            warm <= 3.0,
            None,
            {"idle_import_s": round(background or 0.0, 2), "steps_s": warm_steps},
        ),
        Measurement(
            "cold load in a new process (the load imports torch and transformers itself)",
            round(base, 2),
            round(cold, 2),
            "s",
            round(cold / base, 3),
            "(table row)",
            None,
            None,
            {
                "importing_libraries_s": round(imports, 2),
                "lmwidgets_work_s": round(cold - imports, 2),
                "steps_s": cold_steps,
            },
        ),
    ]


# The modules (torch, transformers, ...) that loading the default model imports; importing them
# in another new process times the part of the load lmwidgets cannot shorten.
_LOADED_MODULES = """
import json, sys, lmwidgets
lmwidgets.load_model()
print(json.dumps([name for name in sys.modules if not name.startswith("lmwidgets")]))
"""

_IMPORT_MODULES = """
import importlib, json, sys, time
names = json.loads(sys.stdin.read())
started = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(time.perf_counter() - started)
"""


_WEIGHTS_MEMORY = """
import json, sys
import torch, transformers  # imports are not the weights' memory
from transformers import AutoModelForCausalLM, AutoTokenizer
from lmwidgets.engines.transformers.generation import GenerationSettings, Row, generate_batch

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

baseline = rss()
if sys.argv[1] == "lmwidgets":
    import lmwidgets
    loaded = lmwidgets.load_model()
    model, tokenizer = loaded.model, loaded.tokenizer
else:
    from lmwidgets.engines.transformers.sources import default_model_source
    source = default_model_source()
    tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        source.location, gguf_file=source.gguf_file, dtype=torch.float32
    )
ids = tokenizer("The capital of France is")["input_ids"]
generate_batch(model, tokenizer, [Row(ids)], GenerationSettings(max_new_tokens=8))
print(json.dumps({"grew": rss() - baseline}))
"""


def bench_weights_memory() -> Measurement:
    """RAM the default model takes in a fresh process (float32, after a short generation;
    Linux: read from /proc)."""

    def grew(who: str) -> float:
        return json.loads(_in_new_process(_WEIGHTS_MEMORY, who))["grew"] / 2**20

    lmw, base = grew("lmwidgets"), grew("transformers")
    return Measurement(
        "default model in RAM (float32, packed weights vs plain transformers)",
        round(base, 1),
        round(lmw, 1),
        "MB",
        round(lmw / base, 3),
        "< 1024 MB",
        lmw < 1024,
        None,
    )


class _FirstToken:
    """A streamer that notes when ``generate`` produced its first new token."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self.first is None:
            self.first = time.perf_counter() - self.started

    def end(self) -> None:
        pass


def _prefix_prompts(loaded, quick: bool):
    """A few-shot prompt with a ~1,000-token prefix (the examples) and 8 different questions."""
    from lmwidgets.engines.registry import ModelRegistry
    from lmwidgets.engines.transformers.generation import GenerationSettings
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import prepare

    registry = ModelRegistry()
    registry.add(loaded)
    facts = [
        ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
        ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Peru", "Lima"),
        ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Chile", "Santiago"), ("India", "New Delhi"),
    ]  # fmt: skip
    examples = [
        (
            f"Example {i}: In one sentence, what is the capital of {country}, and what is one "
            "thing a visitor might notice there first?",
            f"The capital of {country} is {city}; visitors often first notice its busy centre.",
        )
        for i, (country, city) in enumerate(facts[:8] if quick else facts * 2)
    ]
    questions = ["Brazil", "Greece", "Ireland", "Mexico", "Poland", "Sweden", "Turkey", "Vietnam"]
    variants = []
    for country in questions:
        plan = build_variants(
            f"In one sentence, what is the capital of {country}?",
            registry=registry,
            model=loaded.name,
            system=None,
            settings=GenerationSettings(max_new_tokens=8 if quick else 16),
            strategy="few-shot",
            examples=examples,
        )
        variants.append(plan.variants[0])
    for variant in variants:
        prepare(variant, [])
    from lmwidgets.engines.transformers.prefix_cache import shared_length

    return variants, shared_length(_ids(variants[0]), _ids(variants[1]))


def bench_prefix(loaded, quick: bool) -> Measurement:
    """8 questions after the same long few-shot prefix, run one after another (as a user
    changes the question): the prefix's KV cache reused vs recomputed each time."""
    import torch

    from lmwidgets.run.runner import run_variants

    variants, prefix = _prefix_prompts(loaded, quick)
    n_tokens = variants[0].settings.max_new_tokens
    rounds = []
    for _ in range(2):  # the first round warms up
        base_first, base_total, base_tokens = [], 0.0, []
        for variant in variants:
            streamer = _FirstToken()
            ids = torch.tensor([_ids(variant)])
            with torch.inference_mode():
                out = loaded.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=n_tokens,
                    min_new_tokens=n_tokens,
                    do_sample=False,
                    pad_token_id=loaded.tokenizer.pad_token_id,
                    streamer=streamer,
                )
            base_total += time.perf_counter() - streamer.started
            base_first.append(streamer.first)
            base_tokens.append(out[0, ids.shape[1] :].tolist())
        loaded.prefix_cache().clear()  # the first question computes the prefix
        lmw_first, lmw_total, texts = [], 0.0, []
        for variant in variants:
            started = time.perf_counter()
            result = run_variants([variant], view=None, ignore_eos=True).results[0]
            lmw_total += time.perf_counter() - started
            lmw_first.append(result.first_token_seconds)
            texts.append(result.text)
        rounds.append((base_first, base_total, base_tokens, lmw_first, lmw_total, texts))
    base_first, base_total, base_tokens, lmw_first, lmw_total, texts = rounds[-1]
    ttft = statistics.mean(lmw_first) / statistics.mean(base_first)
    total = lmw_total / base_total
    met = ttft <= 0.3 and total <= 0.7
    return Measurement(
        "prefix reuse: 8 questions after a shared few-shot prefix (time to first token)",
        round(statistics.mean(base_first), 3),
        round(statistics.mean(lmw_first), 3),
        "s",
        round(ttft, 3),
        "<= 0.3x (total <= 0.7x)",
        met,
        _texts(loaded, base_tokens) == texts,
        {
            "prefix_tokens": prefix,
            "total_seconds_baseline": round(base_total, 3),
            "total_seconds_lmwidgets": round(lmw_total, 3),
            "total_ratio": round(total, 3),
            "new_tokens_per_question": n_tokens,
        },
    )


def _reset_peak_memory() -> None:
    """Start a new peak: Linux resets VmHWM on ``5 > /proc/self/clear_refs``; CUDA its stats."""
    import contextlib

    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_memory() -> dict[str, float]:
    """Peak resident memory (and GPU memory) since :func:`_reset_peak_memory`, in MB."""
    peak: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        peak["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    import torch

    if torch.cuda.is_available():
        peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def _with_logprobs(variants, k: int):
    """The same prepared variants asking for ``k`` alternatives per token (0: none)."""
    from dataclasses import replace

    return [replace(v, settings=replace(v.settings, logprobs=k)) for v in variants]


def bench_logprobs(loaded, n_tokens: int, repeats: int) -> Measurement:
    """Generation with per-token log-probabilities (top 5) vs without, 4 rows in one batch.

    Both sides run the same 4 variants through ``run_variants``, interleaved; the ratio is the
    cost of one ``log_softmax`` and ``topk`` per step plus decoding each token's text.
    """
    from lmwidgets.run.runner import run_variants

    plain = _variants(loaded, n_tokens)
    with_logprobs = _with_logprobs(plain, 5)
    off_times, on_times = [], []
    off = on = None
    for _ in range(repeats + 1):  # the first round warms up
        started = time.perf_counter()
        off = run_variants(plain, view=None, ignore_eos=True)
        off_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        on = run_variants(with_logprobs, view=None, ignore_eos=True)
        on_times.append(time.perf_counter() - started)
    base, lmw = statistics.median(off_times[1:]), statistics.median(on_times[1:])
    ratio = lmw / base
    texts_match = [r.text for r in off.results] == [r.text for r in on.results]
    details = [r.tokens_detail for r in on.results]
    reported = all(d and len(d) == n_tokens for d in details)
    return Measurement(
        "logprobs overhead: --logprobs 5 vs off, 4 columns in one batch (time)",
        round(base, 3),
        round(lmw, 3),
        "s",
        round(ratio, 3),
        "<= 1.10x",
        ratio <= 1.10,
        texts_match and reported,
        {"columns": len(plain), "new_tokens_per_column": n_tokens, "top_k": 5},
    )


class _CountingView(_HeadlessView):
    """A headless live view that counts the messages its widget sends and their size."""

    def __init__(self, variants):
        super().__init__(variants)
        self.messages = 0
        self.bytes = 0
        send = self.view.widget.send

        def counted(message, buffers=None):
            self.messages += 1
            self.bytes += len(json.dumps(message))
            return send(message, buffers)

        self.view.widget.send = counted


def bench_token_messages(loaded, n_tokens: int, repeats: int) -> Measurement:
    """Messages per second from a live view streaming 4 columns, token data on vs off.

    The live view coalesces updates (one message per throttle interval, only the cells that
    changed); token data rides in the same messages, so turning it on must not send more of
    them. Bytes per second are in the details (token data makes messages larger).
    """
    from lmwidgets.run.runner import run_variants

    plain = _variants(loaded, n_tokens)
    with_logprobs = _with_logprobs(plain, 5)
    rates: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    texts: dict[bool, list[str]] = {}
    for _ in range(repeats):
        for on, variants in ((False, plain), (True, with_logprobs)):
            view = _CountingView(variants)
            started = time.perf_counter()
            comparison = run_variants(variants, view=view, ignore_eos=True)
            seconds = time.perf_counter() - started
            rates[on].append((view.messages / seconds, view.bytes / seconds))
            texts[on] = [r.text for r in comparison.results]
    off_rate = statistics.median(r for r, _ in rates[False])
    on_rate = statistics.median(r for r, _ in rates[True])
    ratio = on_rate / off_rate if off_rate else float("inf")
    return Measurement(
        "token view messages: 4 columns streamed, tokens on vs off (messages/s)",
        round(off_rate, 2),
        round(on_rate, 2),
        "msg/s",
        round(ratio, 3),
        "<= 1.0x (+5% noise)",
        ratio <= 1.05,
        texts[False] == texts[True],
        {
            "new_tokens_per_column": n_tokens,
            "bytes_per_second_off": round(statistics.median(b for _, b in rates[False])),
            "bytes_per_second_on": round(statistics.median(b for _, b in rates[True])),
        },
    )


@contextlib.contextmanager
def _private_response_cache():
    """A fresh, empty response cache for one benchmark (never the user's)."""
    import os
    import shutil

    directory = tempfile.mkdtemp(prefix="lmwidgets-bench-cache-")
    before = os.environ.get("LMWIDGETS_CACHE")
    os.environ["LMWIDGETS_CACHE"] = directory
    try:
        yield Path(directory)
    finally:
        if before is None:
            os.environ.pop("LMWIDGETS_CACHE", None)
        else:
            os.environ["LMWIDGETS_CACHE"] = before
        shutil.rmtree(directory, ignore_errors=True)


def bench_cache(loaded, n_tokens: int, repeats: int) -> Measurement:
    """Re-running an unchanged 3-column cell (zero-shot, few-shot, cot; streamed into a headless
    live view) answered from the response cache vs its first run, which generates and stores.

    Each round starts from an empty cache; the ratio is the re-run's wall time over the first
    run's. Outputs match when every re-run column is cached and has the first run's text,
    token count and finish reason.
    """
    from lmwidgets.run.runner import run_variants

    variants = _variants(loaded, n_tokens)[:3]
    first_times, again_times, match = [], [], True
    for _ in range(repeats + 1):  # the first round warms up
        with _private_response_cache():
            view = _HeadlessView(variants)
            started = time.perf_counter()
            first = run_variants(variants, view=view, ignore_eos=True, cache=True)
            first_times.append(time.perf_counter() - started)
            view = _HeadlessView(variants)
            started = time.perf_counter()
            again = run_variants(variants, view=view, ignore_eos=True, cache=True)
            again_times.append(time.perf_counter() - started)
        same = [(r.text, r.tokens, r.finish_reason) for r in first.results] == [
            (r.text, r.tokens, r.finish_reason) for r in again.results
        ]
        match = match and same and all(r.cached for r in again) and not any(r.cached for r in first)
    base, lmw = statistics.median(first_times[1:]), statistics.median(again_times[1:])
    ratio = lmw / base
    return Measurement(
        "response cache: unchanged 3-column cell re-run from the cache vs first run (time)",
        round(base, 4),
        round(lmw, 4),
        "s",
        round(ratio, 4),
        "<= 0.05x",
        ratio <= 0.05,
        match,
        {"columns": [v.label for v in variants], "new_tokens_per_column": n_tokens},
    )


def _audio_variants(loaded, n_tokens: int):
    """4 columns, each asking about its own clip (tones and noise, 1-2 s, mixed sample rates)."""
    import numpy as np

    from lmwidgets.core.variant import Variant
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.media.audio import load_audio
    from lmwidgets.prompting.content import with_media

    rate = 16_000
    t = np.arange(rate * 2) / rate
    clips = [
        load_audio((0.5 * np.sin(2 * np.pi * 220 * t[:rate]), rate), name="tone-220"),
        load_audio((0.5 * np.sin(2 * np.pi * 880 * t), rate), name="tone-880"),
        load_audio((np.random.default_rng(0).normal(0, 0.2, 22_050), 22_050), name="noise"),
        load_audio((0.3 * np.sign(np.sin(2 * np.pi * 3 * t)), rate), name="clicks"),
    ]
    settings = GenerationSettings(max_new_tokens=n_tokens)
    messages = with_media([{"role": "user", "content": "What do you hear?"}], ["audio"])
    return [Variant(c.name, messages, loaded, settings, media=[c]) for c in clips]


def bench_audio(n_tokens: int, repeats: int) -> Measurement:
    """4 audio prompts (one clip each) on the tiny random Qwen2-Audio: one batch vs one after
    another; each batched column's text must equal its run alone. Per clip, the processor's
    features (a 30 s log-mel window) and the audio encoder cost the same either way, so short
    answers gain less than text columns."""
    import lmwidgets
    from lmwidgets.engines.registry import REGISTRY
    from lmwidgets.engines.transformers.demo_models import build_tiny_qwen2_audio

    with tempfile.TemporaryDirectory() as directory:
        model_dir = build_tiny_qwen2_audio(Path(directory) / "alm")
        loaded = lmwidgets.load_model(str(model_dir), name="bench-audio")
        try:
            variants = _audio_variants(loaded, n_tokens)
            alone, batched, match = _batched_vs_alone(variants, n_tokens, repeats)
        finally:
            REGISTRY.remove("bench-audio")
    ratio = batched / alone
    return Measurement(
        "audio: 4 clips (tiny Qwen2-Audio), one batch vs 4 runs",
        round(alone, 2),
        round(batched, 2),
        "tok/s",
        round(ratio, 2),
        ">= 2x",
        ratio >= 2.0,
        match,
        {"clips": [v.label for v in variants], "new_tokens_per_column": n_tokens},
    )


def _shared_clip_variants(loaded, n_tokens: int):
    """4 columns asking about one 2 s clip in 4 wordings (as --compare or --prompts do)."""
    import numpy as np

    from lmwidgets.core.variant import Variant
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.media.audio import load_audio
    from lmwidgets.prompting.content import with_media

    rate = 16_000
    t = np.arange(rate * 2) / rate
    clip = load_audio((0.5 * np.sin(2 * np.pi * 330 * t), rate), name="tone-330")
    settings = GenerationSettings(max_new_tokens=n_tokens)
    return [
        Variant(
            f"wording {i + 1}",
            with_media([{"role": "user", "content": question}], ["audio"]),
            loaded,
            settings,
            media=[clip],
        )
        for i, question in enumerate(WORDINGS[:4])
    ]


def bench_audio_features(n_tokens: int, repeats: int) -> Measurement:
    """4 columns hearing the same clip on the tiny Qwen2-Audio: rendering their prompts with
    the processor's per-clip feature cache vs without it (each column computes the clip's 30 s
    log-mel window again, about 0.2 s on a CPU), interleaved, median after a warm-up round.
    Each setting then runs the columns in full: the texts must be equal (the whole run's
    seconds are in the details; generation there does not change)."""
    import lmwidgets
    from lmwidgets.engines.registry import REGISTRY
    from lmwidgets.engines.transformers.demo_models import build_tiny_qwen2_audio
    from lmwidgets.engines.transformers.multimodal import FEATURE_CACHE_CLIPS, feature_cache
    from lmwidgets.run.runner import prepare, run_variants

    settings = (0, FEATURE_CACHE_CLIPS)
    timings: dict[int, list[float]] = {capacity: [] for capacity in settings}
    texts: dict[int, list[str]] = {}
    runs: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        model_dir = build_tiny_qwen2_audio(Path(directory) / "alm")
        loaded = lmwidgets.load_model(str(model_dir), name="bench-audio-features")
        try:
            cache = feature_cache(loaded.processor)
            if cache is None:
                raise RuntimeError("the tiny Qwen2-Audio lost its Whisper feature extractor")
            variants = _shared_clip_variants(loaded, n_tokens)
            for _ in range(repeats + 1):  # the first round warms up
                for capacity in settings:
                    cache.capacity = capacity
                    cache.clear()
                    started = time.perf_counter()
                    for variant in variants:
                        prepare(variant, [])
                    timings[capacity].append(time.perf_counter() - started)
            hits = cache.hits
            for capacity in settings:
                cache.capacity = capacity
                cache.clear()
                started = time.perf_counter()
                texts[capacity] = [r.text for r in run_variants(variants, ignore_eos=True)]
                runs[capacity] = round(time.perf_counter() - started, 3)
        finally:
            REGISTRY.remove("bench-audio-features")
    base = statistics.median(timings[0][1:])
    lmw = statistics.median(timings[FEATURE_CACHE_CLIPS][1:])
    ratio = lmw / base
    return Measurement(
        "audio: 4 columns hearing one clip, prompts rendered with vs without the feature cache",
        round(base, 3),
        round(lmw, 3),
        "s",
        round(ratio, 3),
        "<= 0.5x",
        ratio <= 0.5,
        texts[0] == texts[FEATURE_CACHE_CLIPS],
        {
            "columns": [v.label for v in variants],
            "feature_hits_per_render": hits,
            "whole_run_seconds": {"without": runs[0], "with": runs[FEATURE_CACHE_CLIPS]},
            "new_tokens": n_tokens,
        },
    )


def _measured(function, *args) -> list[Measurement]:
    """Run one benchmark and attach its peak memory to each of its rows."""
    _reset_peak_memory()
    result = function(*args)
    rows = result if isinstance(result, list) else [result]
    peak = _peak_memory()
    for row in rows:
        row.details.update(peak)
    return rows


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_description(loaded) -> dict[str, Any]:
    """What the numbers were measured on: the CPU (model, the instruction-set flags that pick
    kernels, threads), the GPU if any, library versions and the model's CPU kernel choice."""
    import os

    import torch

    from lmwidgets.engines.transformers.kernel_choice import cpu_description
    from lmwidgets.run.records import library_versions

    cpu = cpu_description()
    choice = getattr(loaded, "cpu_kernels", None)
    return {
        "cpu": cpu["model"],
        "cpu_flags": cpu["flags"],
        "cpu_capability": cpu["capability"],
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "versions": library_versions(),
        "cpu_kernels": choice.label() if choice else None,
        "cpu_kernel_plan": choice.record()["plan"] if choice else None,
    }


def _machine_lines(machine: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in (machine["versions"] or {}).items())
    load = machine["load_average"]
    return "\n".join(
        [
            f"cpu: {machine['cpu']} ({machine['cores']} cores; flags "
            f"{' '.join(machine['cpu_flags']) or 'none of note'}; PyTorch {machine['cpu_capability']}, "
            f"{machine['torch_threads']} threads); gpu: {machine['gpu'] or 'none'}",
            f"cpu kernels: {machine['cpu_kernels']}; plan: {machine['cpu_kernel_plan']}",
            f"versions: {versions}",
            f"load average at the end: {load}",
        ]
    )


def _table(rows: list[Measurement]) -> str:
    header = (
        "benchmark", "baseline", "lmwidgets", "ratio", "target", "met?", "same output?", "peak RSS"
    )  # fmt: skip
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.benchmark,
                f"{row.baseline} {row.unit}",
                f"{row.lmwidgets} {row.unit}",
                f"{row.ratio}",
                row.target,
                {True: "yes", False: "NO", None: "-"}[row.met],
                {True: "yes", False: "NO", None: "-"}[row.outputs_match],
                f"{row.details.get('peak_rss_mb', '-')} MB",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


#: The benchmarks ``--only`` picks from, in the order they run.
BENCHMARKS = (
    "side", "decode", "sweep", "wordings", "streaming", "prefix", "roofline", "roofline_large",
    "adapters",
    "logprobs", "tokens", "cache", "audio", "media_dataset", "load",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Tiny model, few tokens: a smoke run.")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--tokens", type=int, default=None, help="New tokens per variant.")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--only",
        default=None,
        help=f"Comma-separated subset: {','.join(BENCHMARKS)} (default: all).",
    )
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    tokens = args.tokens or (12 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    loaded = _load(args.quick)
    only = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    rows: list[Measurement] = []
    if "side" in only:
        rows += _measured(bench_side_by_side, loaded, tokens, repeats)
    if "decode" in only:
        rows += _measured(bench_decode, loaded, tokens, repeats)
    if "sweep" in only:
        rows += _measured(bench_temperature_sweep, loaded, tokens, repeats)
    if "wordings" in only:
        rows += _measured(bench_prompt_variants, loaded, tokens, repeats)
    if "streaming" in only:
        rows += _measured(bench_streaming, loaded, tokens * (1 if args.quick else 2), repeats)
    if "prefix" in only:
        rows += _measured(bench_prefix, loaded, args.quick)
    if "roofline" in only:
        rows += _measured(bench_roofline, loaded, tokens)
    if "roofline_large" in only and not args.quick:
        rows += _measured(bench_roofline_large, loaded, tokens)
    if "adapters" in only:
        rows += _measured(bench_adapters, loaded, tokens, repeats)
    if "logprobs" in only:
        rows += _measured(bench_logprobs, loaded, tokens, repeats)
    if "tokens" in only:
        rows += _measured(bench_token_messages, loaded, tokens * (1 if args.quick else 4), repeats)
    if "cache" in only:
        rows += _measured(bench_cache, loaded, tokens, repeats)
    if "audio" in only:
        rows += _measured(bench_audio, tokens * (1 if args.quick else 2), repeats)
        rows += _measured(bench_audio_features, tokens, repeats)
    if "media_dataset" in only:
        from benchmarks.media import bench_media_dataset

        rows += _measured(bench_media_dataset, Measurement)
    if "load" in only and not args.quick:
        rows += _measured(bench_load_time)
        rows += _measured(bench_weights_memory)
    from lmwidgets.run.records import library_versions

    machine = machine_description(loaded)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "model": loaded.summary(),
        "machine": machine,
        "torch_threads": torch.get_num_threads(),
        "versions": library_versions(),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "results": [asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(_table(rows))
    print(
        f"\nmodel: {loaded.summary()}\npeak RSS: {report['peak_rss_mb']} MB\nwritten: {args.json}"
    )
    print(_machine_lines(machine))
    mismatched = [row.benchmark for row in rows if row.outputs_match is False]
    if mismatched:
        print(f"OUTPUT MISMATCH in: {', '.join(mismatched)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
