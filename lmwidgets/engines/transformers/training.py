"""Making a LoRA adapter in the notebook: a short fine-tune on a handful of examples.

This is for trying ideas (a style, an answer format) in seconds on a small model, not for
serious training. The loaded model is used as it is (no reload, no copy): a temporary adapter is
trained on it and saved as a peft adapter directory (safetensors), then removed again, leaving the
model exactly as it was. Attach the result with ``%lm adapter load DIR --as NAME``.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmwidgets.checks import finite_number, whole_number
from lmwidgets.engines.registry import REGISTRY, ModelRegistry
from lmwidgets.engines.transformers.engine import TransformersEngine as LoadedModel
from lmwidgets.errors import InvalidArgumentError

_TEMP = "lmw-training"


@dataclass
class TrainedAdapter:
    """Where the adapter was saved and how training went (pass it wherever a path is expected)."""

    path: Path
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (float("nan"),) * 2
        return f"{self.path} (loss {first:.2f} → {last:.2f} in {self.seconds:.0f} s)"


def _batch(loaded: LoadedModel, examples, system: str | None):
    import torch

    from lmwidgets.engines.transformers.chat import encode, render_text

    tokenizer = loaded.tokenizer
    rows = []
    for example in examples:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": example.input}
        ]
        prompt_ids = encode(tokenizer, render_text(tokenizer, messages))
        answer = example.output + (tokenizer.eos_token or "")
        answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
        rows.append((prompt_ids + answer_ids, len(prompt_ids)))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (ids, prompt_length) in enumerate(rows):
        input_ids[index, : len(ids)] = torch.tensor(ids)
        attention[index, : len(ids)] = 1
        labels[index, prompt_length : len(ids)] = torch.tensor(ids[prompt_length:])
    device = loaded.device
    return input_ids.to(device), attention.to(device), labels.to(device)


def train_lora(
    examples: Any,
    output_dir: str | os.PathLike[str],
    *,
    model: str | None = None,
    rank: int = 8,
    alpha: float | None = None,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    layers: list[int] | None = None,
    steps: int = 30,
    learning_rate: float = 2e-3,
    system: str | None = None,
    seed: int = 0,
    registry: ModelRegistry = REGISTRY,
) -> TrainedAdapter:
    """Fine-tune a LoRA adapter on ``examples`` ((input, output) pairs, dicts or a DataFrame).

    Only the answer tokens are learned (the prompt, rendered with the chat template, is masked).
    ``layers`` limits the adapter to some decoder layers (e.g. the last few, for speed).
    """
    from peft import LoraConfig

    from lmwidgets.core.examples import normalize_examples
    from lmwidgets.validation import check_training_call

    check_training_call(
        output_dir,
        model=model,
        rank=rank,
        alpha=alpha,
        targets=targets,
        layers=layers,
        steps=steps,
        learning_rate=learning_rate,
        system=system,
        seed=seed,
    )
    loaded = registry.get(model)
    if not isinstance(loaded, LoadedModel):
        raise InvalidArgumentError(
            f"train_lora fine-tunes a model loaded into this kernel; {loaded.name} runs on the "
            f"{loaded.engine} engine. Load the model with `%lm load` first."
        )
    parsed = normalize_examples(examples)
    whole_number(rank, "rank", minimum=1)
    whole_number(steps, "steps", minimum=1)
    if not finite_number(learning_rate) or not learning_rate > 0:
        raise InvalidArgumentError(f"learning_rate must be > 0, not {learning_rate!r}.")
    _check_targets(loaded, targets, layers)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else 2 * rank,
        target_modules=list(targets),
        layers_to_transform=layers,
        lora_dropout=0.0,
        base_model_name_or_path=loaded.source.spec,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
        return _train(loaded, parsed, config, output_dir, steps, learning_rate, system, seed)


def _check_targets(loaded: LoadedModel, targets: Any, layers: Any) -> None:
    """Every target names modules of the model and every layer exists (peft's own errors about
    them come from deep inside it)."""
    import re

    names = [name for name, _ in loaded.model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in loaded.model.named_modules() if hasattr(m, "weight")}
        )
        raise InvalidArgumentError(
            f"targets {', '.join(map(repr, missing))}: no such module in {loaded.name} "
            f"(its modules with weights: {', '.join(linear[:12])})."
        )
    numbers = {int(m.group(1)) for n in names if (m := re.search(r"\.layers\.(\d+)\.", n))}
    unknown = [layer for layer in layers or [] if layer not in numbers]
    if unknown:
        have = f"0 to {max(numbers)}" if numbers else "none that can be named"
        raise InvalidArgumentError(
            f"layers {', '.join(map(str, unknown))}: {loaded.name} has layers {have}."
        )


def _train(
    loaded, parsed, config, output_dir, steps, learning_rate, system, seed
) -> TrainedAdapter:
    """The training loop of :func:`train_lora` (the model is restored in the finally block)."""
    import torch
    from peft import PeftModelForCausalLM
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    existing = loaded.extras.get("peft_model")
    started = time.perf_counter()
    losses: list[float] = []
    torch.manual_seed(seed)
    peft_model = existing
    try:
        if existing is None:
            peft_model = PeftModelForCausalLM(loaded.model, config, adapter_name=_TEMP)
        else:
            peft_model.add_adapter(_TEMP, config)
        peft_model.set_adapter(_TEMP)  # the only adapter the training forward runs with
        trainable = [p for n, p in peft_model.named_parameters() if f".{_TEMP}." in n]
        for param in peft_model.parameters():
            param.requires_grad_(False)
        for param in trainable:
            param.requires_grad_(True)
        optimizer = torch.optim.AdamW(trainable, lr=learning_rate)
        input_ids, attention, labels = _batch(loaded, parsed, system)
        with torch.enable_grad():
            for _ in range(steps):
                out = peft_model(
                    input_ids=input_ids,
                    attention_mask=attention,
                    labels=labels,
                )
                optimizer.zero_grad()
                out.loss.backward()
                optimizer.step()
                losses.append(float(out.loss.detach()))
        # save_embedding_layers=False: no hub lookup of the base model's config (offline-safe).
        state = get_peft_model_state_dict(
            peft_model, adapter_name=_TEMP, save_embedding_layers=False
        )
        target = Path(output_dir)
        target.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in state.items()},
            str(target / "adapter_model.safetensors"),
        )
        config.inference_mode = True
        config.save_pretrained(str(target))
    finally:
        if peft_model is not None:
            if existing is None:
                loaded.model = peft_model.unload()
            elif _TEMP in peft_model.peft_config:
                with warnings.catch_warnings():  # peft notes the switch of its active adapter
                    warnings.simplefilter("ignore")
                    peft_model.delete_adapter(_TEMP)
        for param in loaded.model.parameters():
            param.requires_grad_(False)
        loaded.model.eval()
        if loaded.prepacked_layers:
            from lmwidgets.engines.transformers.cpu_kernels import release_dense_pages

            release_dense_pages(loaded.model)  # training read the dense weights back in
    return TrainedAdapter(path=target, losses=losses, seconds=time.perf_counter() - started)
