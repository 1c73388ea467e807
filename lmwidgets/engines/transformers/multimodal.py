"""Images and audio for multimodal models in the kernel: limits and processor inputs.

The model's own processor renders the chat template (content lists, see
:mod:`lmwidgets.prompting.content`) and turns the images into pixel inputs and the audio clips
(resampled to its rate) into features; rows of one batch are merged here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmwidgets.errors import AudioError, ImageError, MediaError
from lmwidgets.media.base import MediaInput

#: Models trained on one image per prompt (more images are refused); others accept several,
#: limited by their context. ``%lm load --max-images N`` overrides it.
SINGLE_IMAGE_MODELS = frozenset({"paligemma", "mllama", "llava", "llava_next", "fuyu"})


#: Processor outputs that hold one row per clip or image, never one entry per token (they are
#: concatenated, not padded, even when their length happens to equal the prompt's).
PER_ITEM_KEYS = frozenset({"input_features", "feature_attention_mask", "input_features_mask"})


def processor_kinds(processor: Any) -> frozenset[str]:
    """The media kinds a multimodal processor turns into model inputs: ``image`` with an image
    processor, ``audio`` with an audio feature extractor (both for models such as Gemma 3n)."""
    if processor is None:
        return frozenset()
    kinds = set()
    if getattr(processor, "image_processor", None) is not None:
        kinds.add("image")
    extractor = getattr(processor, "feature_extractor", None) or getattr(
        processor, "audio_processor", None
    )
    if extractor is not None and getattr(extractor, "sampling_rate", None):
        kinds.add("audio")
    return frozenset(kinds)


def audio_rate(processor: Any) -> int:
    """The sample rate (Hz) the processor's feature extractor takes."""
    extractor = getattr(processor, "feature_extractor", None) or getattr(
        processor, "audio_processor", None
    )
    return int(extractor.sampling_rate)


def audio_window(processor: Any) -> float | None:
    """Seconds of audio the processor keeps per clip (Whisper-style extractors pad or cut every
    clip to ``chunk_length``, 30 s for Qwen2-Audio); None when it says nothing."""
    extractor = getattr(processor, "feature_extractor", None)
    samples = getattr(extractor, "n_samples", None)
    rate = getattr(extractor, "sampling_rate", None)
    return samples / rate if samples and rate else None


def max_images(loaded: Any) -> int | None:
    """How many images one prompt may hold for this model (None: as many as fit its context)."""
    limit = loaded.extras.get("max_images")
    if limit is not None:
        return int(limit)
    model_type = getattr(loaded.model.config, "model_type", "")
    return 1 if model_type in SINGLE_IMAGE_MODELS else None


def _processed_size(encoded: dict[str, Any], processor: Any) -> tuple[int, int] | None:
    """(width, height) of the first image after the processor resized it, where it says so."""
    grid = encoded.get("image_grid_thw")
    if grid is not None and len(grid):
        patch = getattr(getattr(processor, "image_processor", None), "patch_size", None) or 14
        return int(grid[0][2]) * patch, int(grid[0][1]) * patch
    pixels = encoded.get("pixel_values")
    if pixels is not None and getattr(pixels, "dim", lambda: 0)() == 4:
        return int(pixels.shape[-1]), int(pixels.shape[-2])
    return None


def _processor_arguments(processor: Any, media: Sequence[MediaInput]) -> dict[str, Any]:
    """The processor's media arguments: PIL images and mono clips at its sample rate."""
    arguments: dict[str, Any] = {}
    images = [item.model_image() for item in media if item.kind == "image"]  # type: ignore[attr-defined]
    if images:
        arguments["images"] = images
    clips = [item for item in media if item.kind == "audio"]
    if clips:
        rate = audio_rate(processor)
        arguments["audio"] = [clip.model_audio(rate) for clip in clips]  # type: ignore[attr-defined]
        arguments["sampling_rate"] = rate
    return arguments


def encode(
    loaded: Any, text: str, media: Sequence[MediaInput]
) -> tuple[list[int], dict[str, Any], tuple[int, int] | None]:
    """Token ids (image and audio tokens expanded), the other processor outputs of this one row
    (pixel values, audio features, ...) and the first image's processed size."""
    processor = loaded.processor
    try:
        encoded = processor(
            text=text, **_processor_arguments(processor, media), return_tensors="pt"
        )
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        kinds = sorted({item.kind for item in media}) or ["image"]
        error = {"image": ImageError, "audio": AudioError}.get(kinds[0], MediaError)
        what = " and ".join("images" if kind == "image" else "audio" for kind in kinds)
        raise (error if len(kinds) == 1 else MediaError)(
            f"{loaded.name}'s processor rejected the {what}: {first}"
        ) from None
    input_ids = encoded["input_ids"][0].tolist()
    extra = {
        key: value
        for key, value in encoded.items()
        if key not in ("input_ids", "attention_mask") and hasattr(value, "shape")
    }
    return input_ids, extra, _processed_size(encoded, processor)


def merge_row_inputs(extras: Sequence[dict[str, Any] | None], lengths: Sequence[int], width: int):
    """One batch's processor inputs from its rows' inputs (rows without images give none).

    Per-token tensors (shape ``(1, length)``, e.g. ``token_type_ids``) are left-padded like the
    input ids; everything else (pixel values, image sizes, grids) is concatenated in row order,
    which is the order the model matches images to image tokens.
    """
    import torch

    keys = list(dict.fromkeys(key for extra in extras if extra for key in extra))
    merged: dict[str, Any] = {}
    for key in keys:
        per_token = key not in PER_ITEM_KEYS and all(
            extra is None
            or key not in extra
            or (extra[key].dim() == 2 and extra[key].shape == (1, length))
            for extra, length in zip(extras, lengths, strict=True)
        )
        if per_token and any(extra and key in extra for extra in extras):
            sample = next(extra[key] for extra in extras if extra and key in extra)
            padded = torch.zeros((len(extras), width), dtype=sample.dtype)
            for row, (extra, length) in enumerate(zip(extras, lengths, strict=True)):
                if extra and key in extra:
                    padded[row, width - length :] = extra[key][0]
            merged[key] = padded
            continue
        parts = [extra[key] for extra in extras if extra and key in extra]
        try:
            merged[key] = torch.cat(parts, dim=0)
        except RuntimeError as exc:
            raise MediaError(
                f"These media inputs cannot share one batch in this model ({key}: {exc}). Run with "
                "--batch-size 1."
            ) from None
    return merged
