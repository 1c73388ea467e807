"""Images in prompts: content lists for the model's chat template, and processor inputs.

A vision-language model receives each user turn as a *content list* (``{"type": "image"}`` and
``{"type": "text", "text": ...}`` parts); its own processor renders the chat template and turns
the images into pixel inputs. ``--image X`` puts the images before the question; ``{img}``
placeholders in the prompt put each image (in ``--image`` order) where it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmwidgets.engines.transformers.chat import Message
from lmwidgets.errors import ImageError
from lmwidgets.media.images import ImageInput

#: Marks where an image goes in the prompt text.
PLACEHOLDER = "{img}"
#: What ``{img}`` becomes before ``{name}`` interpolation, so a variable called ``img`` cannot
#: replace it.
SENTINEL = "\x00lmw-image\x00"

#: Models trained on one image per prompt (more images are refused); others accept several,
#: limited by their context. ``%lm load --max-images N`` overrides it.
SINGLE_IMAGE_MODELS = frozenset({"paligemma", "mllama", "llava", "llava_next", "fuyu"})


def protect_placeholders(text: str) -> str:
    """Replace ``{img}`` with :data:`SENTINEL` (before ``{name}`` interpolation)."""
    return text.replace(PLACEHOLDER, SENTINEL)


def restore_placeholders(text: str) -> str:
    """Turn :data:`SENTINEL` back into ``{img}`` (for titles and records)."""
    return text.replace(SENTINEL, PLACEHOLDER)


def placeholder_count(text: str) -> int:
    """How many images the (protected) prompt text places itself."""
    return text.count(SENTINEL)


def check_placeholders(text: str, n_images: int) -> None:
    """With ``{img}`` placeholders, there must be exactly one image per placeholder."""
    count = placeholder_count(text)
    if count and count != n_images:
        raise ImageError(
            f"The prompt has {count} {{img}} placeholder(s) but {n_images} image(s) were given "
            "with --image: give one image per placeholder (in order), or drop the placeholders "
            "to put the images before the text."
        )


def content_parts(text: str, n_images: int) -> list[dict[str, Any]]:
    """The parts of one user turn: images at their placeholders, or all images first."""
    if n_images == 0:
        return [{"type": "text", "text": text.replace(SENTINEL, "")}]
    if SENTINEL not in text:
        return [*({"type": "image"} for _ in range(n_images)), {"type": "text", "text": text}]
    parts: list[dict[str, Any]] = []
    pieces = text.split(SENTINEL)
    for index, piece in enumerate(pieces):
        if piece:
            parts.append({"type": "text", "text": piece})
        if index < len(pieces) - 1:
            parts.append({"type": "image"})
    return parts


def with_images(messages: list[Message], n_images: int) -> list[Message]:
    """Every turn as a content list; the images go into the last user turn."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    converted = []
    for index, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, str):
            count = n_images if index == last_user else 0
            content = content_parts(content, count)
        converted.append({**message, "content": content})
    return converted


def image_count(messages: Sequence[Message]) -> int:
    """How many image parts the messages hold."""
    return sum(
        1
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image"
    )


def max_images(loaded: Any) -> int | None:
    """How many images one prompt may hold for this model (None: as many as fit its context)."""
    limit = loaded.extras.get("max_images")
    if limit is not None:
        return int(limit)
    model_type = getattr(loaded.model.config, "model_type", "")
    return 1 if model_type in SINGLE_IMAGE_MODELS else None


def check_model_accepts(loaded: Any, images: Sequence[ImageInput]) -> None:
    """Raise :class:`ImageError` when ``loaded`` cannot take ``images``."""
    if not images:
        return
    if getattr(loaded, "processor", None) is None:
        raise ImageError(
            f"{loaded.name} is a text-only model ({loaded.architecture}); images need a "
            "vision-language model. Load one, e.g. `%lm load HuggingFaceTB/SmolVLM-256M-Instruct "
            "--as vlm`, and pass `--model vlm`."
        )
    limit = max_images(loaded)
    if limit is not None and len(images) > limit:
        raise ImageError(
            f"{loaded.name} accepts at most {limit} image(s) per prompt, but {len(images)} were "
            "given. Compare the images in separate prompts, or set the limit with "
            "`%lm load SOURCE --max-images N` if you know the model handles more."
        )
    if not getattr(loaded.processor, "chat_template", None):
        raise ImageError(
            f"{loaded.name}'s processor has no chat template, so lmwidgets cannot tell where the "
            "images go. Use a chat/instruct version of the model."
        )


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
