"""Images and audio for multimodal models in the kernel: limits and processor inputs.

The model's own processor renders the chat template (content lists, see
:mod:`lmwidgets.prompting.content`) and turns the images into pixel inputs and the audio clips
(resampled to its rate) into features; rows of one batch are merged here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
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
    if any(item.kind == "audio" for item in media):
        feature_cache(processor)  # columns that hear the same clip share its features
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


#: How many clips' features a model keeps (a 30 s Whisper window is 1.5 MB of float32 features).
FEATURE_CACHE_CLIPS = 8


class FeatureCache:
    """A Whisper-style feature extractor that keeps the features of its last few clips.

    Every column that hears a clip renders it again (its text differs), and the extractor
    computes the same 30 s log-mel window each time (about 0.25 s on a CPU). With
    ``padding="max_length"`` (how audio processors call it) every clip is padded to the same
    window, so each clip's features are its own: they are computed one clip at a time, kept by
    the waveform's sha256 and the call's options, and handed out as fresh copies (the processor
    edits what it gets). Other calls, and ``capacity = 0``, go straight to the extractor; every
    other attribute is the extractor's."""

    def __init__(self, extractor: Any, capacity: int = FEATURE_CACHE_CLIPS) -> None:
        self.extractor = extractor
        self.capacity = capacity
        self.hits = 0
        self._kept: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        extractor = self.__dict__.get("extractor")
        if extractor is None:  # copy and pickle look before __init__ ran
            raise AttributeError(name)
        return getattr(extractor, name)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self.hits = 0

    def __call__(self, raw_speech: Any, **options: Any) -> Any:
        import numpy as np

        clips = raw_speech if isinstance(raw_speech, list) else None
        simple = all(isinstance(v, (str, int, float, bool, type(None))) for v in options.values())
        if (
            self.capacity <= 0
            or options.get("padding") != "max_length"
            or not simple
            or not clips
            or not all(
                isinstance(clip, np.ndarray) and clip.ndim == 1 and clip.dtype.kind in "fiu"
                for clip in clips
            )
        ):
            return self.extractor(raw_speech, **options)
        call = repr(sorted(options.items()))
        parts = [self._features(clip, call, options) for clip in clips]
        return _joined(parts)

    def _features(self, clip: Any, call: str, options: dict[str, Any]) -> Any:
        import numpy as np

        digest = hashlib.sha256(f"{clip.dtype}{clip.shape}".encode())
        digest.update(memoryview(np.ascontiguousarray(clip)).cast("B"))
        key = (digest.hexdigest(), call)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                self.hits += 1
                return found
        features = self.extractor([clip], **options)
        with self._lock:
            self._kept[key] = features
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return features


def _joined(parts: list[Any]) -> Any:
    """One extractor output from per-clip ones (kept in the cache): arrays and tensors joined
    on the clip axis as fresh copies, in a new container of the extractor's type."""
    import numpy as np

    joined: dict[str, Any] = {}
    for key in parts[0]:
        values = [part[key] for part in parts]
        if all(isinstance(v, np.ndarray) for v in values):
            joined[key] = np.concatenate(values, axis=0)
        elif all(hasattr(v, "clone") for v in values):
            import torch

            joined[key] = torch.cat(values, dim=0)
        else:
            joined[key] = [np.array(x, copy=True) for v in values for x in v]
    return type(parts[0])(joined)


def feature_cache(processor: Any) -> FeatureCache | None:
    """The processor's feature cache, put in front of its Whisper-style extractor (one with a
    fixed window) on first use; None for a processor without one."""
    extractor = getattr(processor, "feature_extractor", None)
    if isinstance(extractor, FeatureCache):
        return extractor
    if extractor is None or not getattr(extractor, "n_samples", None):
        return None
    cache = FeatureCache(extractor)
    processor.feature_extractor = cache
    return cache
