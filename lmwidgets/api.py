"""The Python API. The notebook magics (``%lm``, ``%%prompt``) are thin wrappers over it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from lmwidgets.engines.registry import REGISTRY, LoadedModel, ModelRegistry
from lmwidgets.engines.transformers.generation import GenerationSettings, StopSignal
from lmwidgets.engines.transformers.loading import (
    ProgressCallback,
    load_from_source,
    pick_device,
    pick_dtype,
)
from lmwidgets.engines.transformers.sources import resolve_source
from lmwidgets.errors import PromptError
from lmwidgets.notebook.ui_events import in_kernel
from lmwidgets.prompting.interpolate import interpolate
from lmwidgets.run.results import Comparison


def load_model(
    source: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    prepack: bool | None = None,
    max_images: int | None = None,
    quantize: str | None = None,
    compile: bool = False,
    registry: ModelRegistry = REGISTRY,
) -> LoadedModel:
    """Load a model into the kernel and make it the current one.

    ``source`` is None for the embedded default (SmolLM2-135M-Instruct), a local transformers
    directory (safetensors), a ``.gguf`` file, or a hub id. ``device``: auto, cpu, cuda or
    cuda:N; ``dtype``: auto, float32, bfloat16 or float16 (``auto`` is bfloat16 on CUDA, float32
    on CPU). Loading a source that is already loaded on the same device and dtype returns the
    loaded model (a no-op). Pickle weights and remote code are refused unless opted in.
    Vision-language models (e.g. SmolVLM, Qwen2.5-VL, LLaVA) load with their processor and take
    ``images=`` in :func:`prompt`; ``max_images`` overrides how many one prompt may hold.
    On CUDA, ``quantize="4bit"|"8bit"`` (bitsandbytes) loads models larger than the GPU's memory
    in 16 bits, and ``compile=True`` decodes with a static cache and ``torch.compile``.
    """
    resolved = resolve_source(
        source, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    device_name = pick_device(device)
    dtype_name = pick_dtype(dtype, device_name)
    # --quantize/--compile are checked where the model is loaded: a loaded model never matches
    # an impossible request below, so the load (and its check) always runs for one.
    existing = registry.find(resolved.key, device_name, dtype_name)
    same_setup = existing is not None and (
        existing.extras.get("quantize") == quantize
        and bool(existing.extras.get("static_cache")) == compile
    )
    if same_setup and (name is None or name == existing.name):
        registry.current = existing.name
        return existing
    if name is not None:
        registry.check_free(name)
    final_name = name or registry.unique_name(resolved.suggested_name)
    loaded = load_from_source(
        resolved,
        name=final_name,
        device=device_name,
        dtype=dtype_name,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        progress=progress,
        prepack=prepack,
        max_images=max_images,
        quantize=quantize,
        compile=compile,
    )
    registry.add(loaded)
    return loaded


def unload_model(name: str, *, registry: ModelRegistry = REGISTRY) -> None:
    """Unload ``name`` and free its memory (weights, adapters and caches)."""
    registry.remove(name)


def models(*, registry: ModelRegistry = REGISTRY) -> list[LoadedModel]:
    """The loaded models, in load order."""
    return list(registry)


def prompt(
    text: str,
    *,
    model: str | None = None,
    system: str | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    variables: Mapping[str, Any] | None = None,
    display: bool | None = None,
    stop: StopSignal | None = None,
    registry: ModelRegistry = REGISTRY,
    on_rerun: Callable[[Comparison], None] | None = None,
    **strategy_options: Any,
) -> Comparison:
    """Run ``text`` as a prompt and return a :class:`Comparison` of the results.

    ``{name}`` fields are filled from ``variables`` (unknown names stay as written; with a
    ``dataset``, each item's columns such as ``{input}`` come first). The chat
    template is applied when the model has one. Greedy by default; ``temperature > 0`` samples
    (``seed`` makes it repeatable). With ``display`` (default: when running in a notebook
    kernel) the answer streams into a live widget with a Stop button. Strategy options
    (``strategy``, ``compare``, ``examples``, ``dataset``, ...) select columns; ``images``
    (paths, URLs, PIL images, arrays, figures, bytes), ``region`` and ``region_mode`` add images
    for vision-language models; see :func:`lmwidgets.prompting.strategies.build_variants`. With images
    the user can draw a region on a thumbnail and re-run in the same view; ``on_rerun`` then
    receives the new :class:`Comparison`.
    """
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    if not text or not text.strip():
        raise PromptError("The prompt is empty: write the prompt in the cell body.")
    namespace = dict(variables or {})
    system_text = None if system is None else interpolate(system, namespace)

    def build(**overrides: Any):
        return build_variants(
            text.strip(),
            registry=registry,
            model=model,
            system=system_text,
            settings=settings,
            variables=namespace,
            **{**strategy_options, **overrides},
        )

    plan = build()
    from lmwidgets.engines.transformers.multimodal import protect_placeholders, restore_placeholders

    template = restore_placeholders(interpolate(protect_placeholders(text.strip()), namespace))
    title = template.strip().splitlines()[0][:120] if template.strip() else ""
    show = in_kernel() if display is None else display
    view = LiveView(plan.variants, title, show=show, grid=plan.grid) if show else None

    def run(plan, stop=stop) -> Comparison:
        return run_variants(
            plan.variants,
            title=title,
            view=view,
            stop=stop,
            batch_size=plan.batch_size,
            finalize=plan.finish,
        )

    if view is not None and any(v.images for v in plan.variants):
        view.enable_rerun(_region_rerun(view, build, run, on_rerun))
    return run(plan)


def _region_rerun(view, build, run, on_rerun):
    """The widget's re-run handler: the same prompt with the region the user drew.

    It runs in the kernel when the browser's request arrives; errors go to the widget's message
    (there is no cell to show them), and the earlier results stay until the new run starts.
    """
    from lmwidgets.errors import GenerationInterrupted, LmWidgetsError
    from lmwidgets.media.images import REGION_MODES, Region

    def handler(request: dict[str, Any]) -> None:
        try:
            box = [round(float(v)) for v in request.get("box", [])]
            mode = request.get("mode", "box")
            if len(box) != 4 or mode not in REGION_MODES:
                raise PromptError("The drawn region is not a box x1,y1,x2,y2; draw it again.")
            plan = build(region=Region(*box, image=int(request.get("image", 0))), region_mode=mode)
        except (LmWidgetsError, TypeError, ValueError) as exc:
            view.widget.message = f"Cannot re-run with that region: {exc}"
            return
        view.restart(plan.variants)
        try:
            comparison = run(plan, stop=None)
        except (LmWidgetsError, GenerationInterrupted) as exc:
            comparison = getattr(exc, "partial", None)
        if comparison is not None and on_rerun is not None:
            on_rerun(comparison)

    return handler


def load_adapter(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    model: str | None = None,
    scale: float = 1.0,
    allow_pickle: bool = False,
    registry: ModelRegistry = REGISTRY,
):
    """Attach a peft LoRA adapter directory to a loaded model (no reload; not activated).

    Use it with ``prompt(..., adapter=NAME)`` or compare with ``adapters="base,NAME,..."``.
    """
    from lmwidgets.engines.transformers.adapters import load_adapter as attach

    return attach(registry.get(model), path, name=name, scale=scale, allow_pickle=allow_pickle)


def unload_adapter(name: str, *, model: str | None = None, registry: ModelRegistry = REGISTRY):
    """Detach adapter ``name`` from ``model`` (default: the current model) and free it."""
    from lmwidgets.engines.transformers.adapters import unload_adapter as detach

    return detach(registry.get(model), name)
