"""The transformers engine's loader, registered as engine ``transformers``."""

from __future__ import annotations

import os
from typing import Any

from lmwidgets.engines.registry import ModelRegistry
from lmwidgets.engines.transformers.engine import TransformersEngine
from lmwidgets.engines.transformers.loading import (
    ProgressCallback,
    load_from_source,
    pick_device,
    pick_dtype,
)
from lmwidgets.engines.transformers.sources import resolve_source


def load(
    source: str | os.PathLike[str] | None,
    *,
    name: str | None,
    registry: ModelRegistry,
    progress: ProgressCallback | None = None,
    device: str = "auto",
    dtype: str = "auto",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    prepack: bool | None = None,
    max_images: int | None = None,
    quantize: str | None = None,
    compile: bool = False,
    cpu_kernels: str | None = None,
) -> TransformersEngine:
    """Load ``source`` (None: the embedded default) unless the same model is loaded already.

    The same source on the same device, dtype, quantization and decoding mode is a no-op that
    returns the loaded model (under ``name``, if given, only when it is that model's name);
    CPU kernels asked for explicitly (``cpu_kernels``/``prepack``) are applied to it in place.
    """
    from lmwidgets.engines.transformers.loading import cpu_kernels_option

    resolved = resolve_source(
        source, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    device_name = pick_device(device)
    dtype_name = pick_dtype(dtype, device_name)
    # --quantize/--compile are checked where the model is loaded: a loaded model never matches
    # an impossible request, so the load (and its check) always runs for one.
    identity = (
        TransformersEngine.engine,
        resolved.key,
        device_name,
        dtype_name,
        quantize,
        bool(compile),
    )
    kernels = cpu_kernels_option(prepack, cpu_kernels, device_name, dtype_name)
    existing: Any = registry.find(identity)
    if existing is not None and (name is None or name == existing.name):
        asked = cpu_kernels is not None or prepack is not None
        if asked and existing.cpu_kernels is not None and kernels != existing.cpu_kernels.kernel:
            existing.set_cpu_kernels(kernels)
        return existing
    if name is not None:
        registry.check_free(name)
    return load_from_source(
        resolved,
        name=name or registry.unique_name(resolved.suggested_name),
        device=device_name,
        dtype=dtype_name,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        progress=progress,
        prepack=prepack,
        max_images=max_images,
        quantize=quantize,
        compile=compile,
        cpu_kernels=kernels,
    )
