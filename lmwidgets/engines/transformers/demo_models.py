"""Tiny random-weight models of real transformers architectures, built from configs.

For tests, demos and the example notebooks on machines that cannot download weights: they run
every code path of a real model (tokenizer, chat template, processor, generate) in milliseconds,
but their answers are noise. :func:`build_tiny_llava` can also *script* its answer (a fixed
text whatever the prompt), so demos of box drawing show boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: ChatML for content lists (image and text parts) as well as plain string contents.
CHATML_VISION_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "The capital of France is Paris. The answer is 42.",
    "Question: what is two plus two? Answer: four. Let's think step by step.",
    "Input: Output: sample text with numbers 0 1 2 3 4 5 6 7 8 9 and <tags> & symbols!",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. 東京 🚀",
] * 20
SPECIALS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(chat: bool = True, extra_specials: Sequence[str] = ()):
    """A byte-level BPE tokenizer (any text round-trips) trained on a tiny corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[*SPECIALS, *extra_specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|im_end|>" if chat else "</s>",
        pad_token="<pad>",
    )
    if chat:
        fast.chat_template = CHATML_TEMPLATE
    return fast


def token_ids(tokenizer) -> dict[str, int]:
    """A config's special token ids: ``tokenizer``'s own (begin, end and padding)."""
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def text_config(config_class, tokenizer, *, context: int, layers: int = 2, **more):
    """The tiny models' decoder (a ``config_class``: Llama, Qwen2...): 64 wide, ``layers``
    layers, ``context`` positions, over ``tokenizer``'s vocabulary and special tokens."""
    return config_class(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        **token_ids(tokenizer),
        **more,
    )


def _widen(model, encoder: str) -> None:
    """Larger decoder weights, so a tiny model gives varied, input-dependent answers instead of
    near-ties; the ``encoder``'s parameters (``vision``, ``audio_tower``) keep theirs."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1 and encoder not in name:
                param.normal_(0, 0.2)


def _ready(model, tokenizer):
    """``model`` in eval mode, generating until ``tokenizer``'s end token, padding with its pad."""
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model


def save_pretrained(directory: str | Path, model, companion) -> Path:
    """Save ``model`` (safetensors) and its tokenizer or processor (``companion``) to
    ``directory`` (made if missing); returns it as a Path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    companion.save_pretrained(directory)
    return directory


def _script_answer(model, tokenizer, chunks: Sequence[str], trigger: int) -> None:
    """Make the language model answer ``chunks`` (each one added token) and stop, whatever the
    prompt: attention and MLP outputs are zeroed, so each position's logits depend on its own
    token only, and the output embedding maps each token to the next one."""
    import torch

    ids = tokenizer.convert_tokens_to_ids(list(chunks))
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")) and "vision" not in name:
                param.zero_()
        head.normal_(0, 0.02)
        chain = [trigger, *ids]
        for current, following in zip(chain, [*ids, tokenizer.eos_token_id], strict=True):
            direction = embed[current] / embed[current].norm()
            head[following] = 3.0 * direction


#: The tiny LLaVA's vision patch size (its images are ``image_size // PATCH`` patches square).
PATCH = 8


def build_tiny_llava(
    directory: str | Path,
    *,
    answer: Sequence[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
) -> Path:
    """Save a tiny random LLaVA (CLIP vision tower + 2-layer Llama, safetensors) with its
    processor and a content-list chat template to ``directory``.

    ``answer``: text chunks the model then always answers (scripted; see :func:`_script_answer`).
    """
    import torch
    from transformers import LlavaForConditionalGeneration

    tokenizer = build_tokenizer(extra_specials=["<image>"])
    if answer:
        tokenizer.add_tokens(list(answer))
    tokenizer.chat_template = CHATML_VISION_TEMPLATE
    processor = _llava_processor(tokenizer, image_size)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(_llava_config(tokenizer, image_size))
    _widen(model, encoder="vision")
    if answer:
        trigger = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-1]
        _script_answer(model, tokenizer, answer, trigger)
    return save_pretrained(directory, _ready(model, tokenizer), processor)


def _llava_processor(tokenizer, image_size: int):
    """The tiny LLaVA's processor: CLIP image preprocessing to ``image_size`` and ``tokenizer``."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    try:  # the PIL backend needs no torchvision
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # older transformers
        ImageProcessor = CLIPImageProcessor

    image_processor = ImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        chat_template=CHATML_VISION_TEMPLATE,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
    )


def _llava_config(tokenizer, image_size: int):
    """The tiny LLaVA's config: a 2-layer CLIP vision tower and a 2-layer Llama."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=PATCH,
        projection_dim=32,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text_config(LlamaConfig, tokenizer, context=1024),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(image_size // PATCH) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )


#: Qwen2-Audio's own chat template (each audio part becomes ``Audio N: <|audio_bos|><|AUDIO|>
#: <|audio_eos|>``), as its processor carries it.
QWEN2_AUDIO_SPECIALS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def build_tiny_qwen2_audio(directory: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny random Qwen2-Audio (a 2-layer Whisper-style encoder + 2-layer Qwen2,
    safetensors) with its processor (Whisper features at 16 kHz, 30 s windows, as the real
    model's) and Qwen2-Audio's chat template to ``directory``; built offline from configs."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    tokenizer = build_tokenizer(extra_specials=QWEN2_AUDIO_SPECIALS)
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16_000)
    processor = Qwen2AudioProcessor(extractor, tokenizer)
    tokenizer.chat_template = processor.chat_template
    audio = Qwen2AudioEncoderConfig(
        num_mel_bins=80,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        d_model=32,
        max_source_positions=extractor.nb_max_frames // 2,
    )
    config = Qwen2AudioConfig(
        audio_config=audio,
        text_config=text_config(Qwen2Config, tokenizer, context=2048),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    _widen(model, encoder="audio_tower")
    return save_pretrained(directory, _ready(model, tokenizer), processor)
