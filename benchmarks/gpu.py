"""GPU benchmarks: a 1B-parameter Llama-architecture model in bfloat16 on CUDA.

    python -m benchmarks.gpu                      # on a CUDA machine -> build/bench-gpu.json
    python -m benchmarks.gpu --quick --device cpu # a smoke run of the same code on a tiny model

No weights can be downloaded on the benchmark machines, so the model is built with random
weights from a TinyLlama-1.1B-shaped config (a forward pass costs the same whatever the weights)
and every row generates a fixed number of tokens. Measured side by side in one run:

* decode speed at batch 1 as a fraction of the HBM bandwidth bound (eager ``generate`` and
  lmwidgets with ``--compile``: static cache in length buckets + torch.compile), target >= 50%;
* 4 variants side by side vs one after another, target >= 3.5x;
* peak GPU memory per benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.run import (
    ROOT,
    Measurement,
    _measured,
    _table,
    bandwidth_bound,
    bench_side_by_side,
    decode_speed,
)

#: TinyLlama-1.1B's shape.
ONE_B = dict(
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
)


def build_model(directory: Path, quick: bool) -> Path:
    """Save a random Llama (1.1B, or tiny with ``quick``) in bfloat16 with a chat tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmwidgets.engines.transformers.demo_models import (
        build_tokenizer,
        save_pretrained,
        token_ids,
    )

    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=32000, **token_ids(tokenizer), **(TINY if quick else ONE_B))
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    return save_pretrained(directory, model, tokenizer)


def bench_roofline(eager, compiled, n_tokens: int) -> Measurement:
    """Batch-1 decoding, eager vs ``--compile``, as fractions of the bandwidth bound."""
    eager_speed, eager_tokens = decode_speed(eager, n_tokens)
    compiled_speed, compiled_tokens = decode_speed(compiled, n_tokens)
    bound, _, bytes_per_token = bandwidth_bound(eager, n_tokens)
    fraction = compiled_speed / bound
    return Measurement(
        f"decode vs bandwidth bound (batch 1, bfloat16, {eager.device}, --compile)",
        round(eager_speed, 2),
        round(compiled_speed, 2),
        "tok/s",
        round(fraction, 3),
        ">= 0.50 of bound",
        fraction >= 0.5,
        eager_tokens == compiled_tokens,
        {
            "bound_tok_s": round(bound, 2),
            "eager_fraction": round(eager_speed / bound, 3),
            "bytes_per_token_MB": round(bytes_per_token / 1e6, 1),
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Tiny model: a smoke run.")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench-gpu.json")
    args = parser.parse_args(argv)
    import torch

    import lmwidgets

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device here; skipped (the CPU table is benchmarks.run).")
        return 0
    tokens = args.tokens or (8 if args.quick else 128)
    directory = build_model(Path(tempfile.mkdtemp()) / "llama", args.quick)
    eager = lmwidgets.load_model(str(directory), name="eager", device=args.device, dtype="bfloat16")
    compiled = lmwidgets.load_model(
        str(directory), name="compiled", device=args.device, dtype="bfloat16", compile=cuda
    )
    if not cuda:  # the static-cache path without compiling (compiling needs CUDA)
        compiled.extras["static_cache"] = True
    rows = _measured(bench_roofline, eager, compiled, tokens)
    rows += _measured(bench_side_by_side, eager, tokens, 1 if args.quick else 3)
    rows[-1].target, rows[-1].met = ">= 3.5x", rows[-1].ratio >= 3.5
    from lmwidgets.run.records import library_versions

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if cuda else args.device,
        "model": eager.summary(),
        "versions": library_versions(),
        "results": [asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(_table(rows))
    print(f"\ndevice: {report['device']}\nmodel: {eager.summary()}\nwritten: {args.json}")
    return 1 if any(row.outputs_match is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
