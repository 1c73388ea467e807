"""Tiny random-weight models of real transformers architectures, built from configs, for tests."""

from __future__ import annotations

from pathlib import Path

from lmwidgets.engines.transformers.demo_models import (
    CHATML_TEMPLATE,
    SPECIALS,
    build_tiny_llava,
    build_tiny_qwen2_audio,
    build_tokenizer,
    save_pretrained,
    text_config,
)

__all__ = [
    "CHATML_TEMPLATE",
    "SPECIALS",
    "build_tiny_llava",
    "build_tiny_qwen2_audio",
    "build_tokenizer",
]


def build_llama(
    directory: Path, *, chat: bool = True, layers: int = 2, context: int = 512, seed: int = 0
) -> Path:
    """Save a 2-layer random Llama (float32, safetensors) with its tokenizer to ``directory``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(chat=chat)
    config = text_config(
        LlamaConfig, tokenizer, context=context, layers=layers, tie_word_embeddings=False
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights: confident, varied predictions instead of near-ties
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 0.2)
    model.eval()
    return save_pretrained(directory, model, tokenizer)


def build_family(directory: Path, family: str) -> tuple[Path, object, object]:
    """(directory, config, tokenizer) of a random ``family`` causal LM (``Qwen2``, ``Mistral``,
    ``Qwen3``...: transformers' ``{family}Config``/``{family}ForCausalLM``) saved there; every
    parameter drawn N(0, 0.2), biases too (a zero bias would hide a misplaced one)."""
    import torch
    import transformers

    tokenizer = build_tokenizer()
    config = text_config(getattr(transformers, f"{family}Config"), tokenizer, context=256)
    torch.manual_seed(1)
    model = getattr(transformers, f"{family}ForCausalLM")(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.2)
    return save_pretrained(directory, model.eval(), tokenizer), config, tokenizer


def build_lora(
    base_dir: Path,
    directory: Path,
    *,
    seed: int = 0,
    rank: int = 4,
    targets=("q_proj", "v_proj"),
    safe: bool = True,
    dora: bool = False,
) -> Path:
    """Save a LoRA adapter with random (non-zero) weights for the model in ``base_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    if (Path(base_dir) / "processor_config.json").is_file():  # a vision-language model
        from transformers import AutoModelForImageTextToText as AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=list(targets),
        init_lora_weights=False,
        use_dora=dora,
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.3)
    model.save_pretrained(str(directory), safe_serialization=safe)
    return directory


def raise_on_forward(model, call: int, make_error):
    """Make the n-th forward pass of the first decoder layer raise ``make_error()``.

    Simulates an out-of-memory error or a kernel interrupt part way through generation; returns
    the hook handle (call ``.remove()``).
    """
    count = {"n": 0}

    def hook(module, args, output):
        count["n"] += 1
        if count["n"] == call:
            raise make_error()

    return model.model.layers[0].register_forward_hook(hook)
