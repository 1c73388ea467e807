"""Images for vision-language models in the kernel: limits and processor inputs.

The model's own processor renders the chat template (content lists, see
:mod:`lmwidgets.prompting.content`) and turns the images into pixel inputs; rows of one batch
are merged here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmwidgets.errors import ImageError
from lmwidgets.media.images import ImageInput

#: Models trained on one image per prompt (more images are refused); others accept several,
#: limited by their context. ``%lm load --max-images N`` overrides it.
SINGLE_IMAGE_MODELS = frozenset({"paligemma", "mllama", "llava", "llava_next", "fuyu"})


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


def encode(
    loaded: Any, text: str, images: Sequence[ImageInput]
) -> tuple[list[int], dict[str, Any], tuple[int, int] | None]:
    """Token ids (image tokens expanded), the other processor outputs of this one row (pixel
    values, image sizes, ...) and the first image's processed size."""
    processor = loaded.processor
    pil = [image.model_image() for image in images]
    try:
        encoded = processor(text=text, images=pil or None, return_tensors="pt")
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"{loaded.name}'s processor rejected the images: {first}") from None
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
        per_token = all(
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
            raise ImageError(
                f"These images cannot share one batch in this model ({key}: {exc}). Run with "
                "--batch-size 1."
            ) from None
    return merged
