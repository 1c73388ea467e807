"""The in-kernel transformers engine: a model, its tokenizer or processor, adapters and caches.

It implements :class:`~lmwidgets.engines.base.Engine` and owns every torch, transformers and peft
object of a loaded model; the layers above see only the protocol.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lmwidgets.engines.base import (
    BatchOutcome,
    Capabilities,
    GenerationSettings,
    Message,
    PromptRow,
    Rendered,
    RowOutput,
    StepCallback,
    StopSignal,
)
from lmwidgets.engines.registry import format_bytes, format_count
from lmwidgets.engines.transformers.sources import ModelSource
from lmwidgets.media.base import MediaInput, check_accepted


def release_heap() -> None:
    """Give freed memory back to the operating system.

    glibc keeps freed blocks in its heap arenas, so after unloading a model the process would
    still look (and, for the OS, be) as large as before; ``malloc_trim`` returns them.
    Elsewhere (macOS, musl, Windows) this does nothing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


@dataclass
class TransformersEngine:
    """A transformers model loaded into this kernel, with what identifies its weights."""

    engine: ClassVar[str] = "transformers"

    name: str
    source: ModelSource
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    weights_sha256: str | None
    revision: str | None
    n_params: int
    memory_bytes: int
    load_seconds: float
    context_length: int | None
    kind: str = "text"
    processor: Any = None
    from_cache: bool = False
    prepacked_layers: int = 0
    #: The CPU linear kernels chosen at load (a KernelChoice; None off the CPU or in 16 bits).
    cpu_kernels: Any = None
    adapters: dict[str, Any] = field(default_factory=dict)
    default_adapter: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    # -- what it is -------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer has a chat template (prompts are then rendered as chat turns)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def architecture(self) -> str:
        """The transformers architecture, e.g. ``LlamaForCausalLM``."""
        archs = getattr(self.model.config, "architectures", None) or []
        return archs[0] if archs else type(self.model).__name__

    @property
    def capabilities(self) -> Capabilities:
        from lmwidgets.engines.transformers.multimodal import max_images, processor_kinds

        kinds = processor_kinds(self.processor)
        return Capabilities(
            media=kinds,
            max_media=max_images(self) if "image" in kinds else None,
            adapters=True,
            token_logprobs=True,
            chat=self.has_chat_template,
            context_length=self.context_length,
            choice_scores=self.processor is None,
        )

    def box_convention(self) -> str:
        return getattr(self.model.config, "model_type", "") or ""

    def identity(self) -> tuple[Any, ...]:
        return (
            self.engine,
            self.source.key,
            self.device,
            self.dtype,
            self.extras.get("quantize"),
            bool(self.extras.get("static_cache")),
        )

    def summary(self) -> str:
        """One line: name, source, parameters, device, dtype, memory, load time."""
        origin = {"gguf": "GGUF", "directory": "local", "hub": "hub"}.get(self.source.kind, "")
        cached = ", cached" if self.from_cache else ""
        kind = f" · {self.modality_label()}" if self.processor is not None else ""
        kind += f" · CPU kernels {self.cpu_kernels.label()}" if self.cpu_kernels else ""
        kind += f" · {self.extras['quantize']}" if self.extras.get("quantize") else ""
        kind += " · compiled decoding" if self.extras.get("static_cache") else ""
        return (
            f"{self.name} · {self.architecture} ({origin}{cached}){kind} · "
            f"{format_count(self.n_params)} params · {self.device} · {self.dtype} · "
            f"{format_bytes(self.memory_bytes)} · loaded in {self.load_seconds:.1f} s"
        )

    def modality_label(self) -> str:
        """What the summary calls a multimodal model: ``vision-language``, ``audio-language``
        or ``image+audio-language`` (models that take both)."""
        kinds = self.capabilities.media
        if kinds == {"image"}:
            return "vision-language"
        if kinds == {"audio"}:
            return "audio-language"
        return "+".join(sorted(kinds)) + "-language"

    def record(self) -> dict[str, Any]:
        """What a run record says about this model."""
        return {
            "engine": self.engine,
            "name": self.name,
            "source": self.source.spec,
            "kind": self.source.kind,
            "location": self.source.location,
            "gguf_file": self.source.gguf_file,
            "weights_sha256": self.weights_sha256,
            "revision": self.revision,
            "architecture": self.architecture,
            "parameters": self.n_params,
            "device": self.device,
            "dtype": self.dtype,
            "cpu_prepacked": bool(self.prepacked_layers),
            "cpu_kernels": self.cpu_kernels.kernel if self.cpu_kernels else None,
            # how it was chosen, per-shape timings, the CPU: not part of what identifies outputs
            "cpu_kernels_choice": self.cpu_kernels.record() if self.cpu_kernels else None,
            "modality": "+".join([*sorted(self.capabilities.media), "text"]),
            "quantize": self.extras.get("quantize"),
            "compiled": bool(self.extras.get("static_cache")),
        }

    # -- prompts ----------------------------------------------------------------------------

    def check_media(self, media: Sequence[MediaInput]) -> None:
        from lmwidgets.errors import AudioError, ImageError

        caps = self.capabilities
        check_accepted(self.name, self.architecture, caps.media, caps.max_media, media)
        if media and not getattr(self.processor, "chat_template", None):
            audio = all(item.kind == "audio" for item in media)
            raise (AudioError if audio else ImageError)(
                f"{self.name}'s processor has no chat template, so lmwidgets cannot tell where "
                f"the {'audio goes' if audio else 'images go'}. Use a chat/instruct version of "
                "the model."
            )

    def media_notes(self, media: Sequence[MediaInput]) -> list[str]:
        """Warnings about what the processor does to ``media``: clips longer than the audio
        window it keeps (Qwen2-Audio pads or cuts every clip to 30 s) are cut."""
        from lmwidgets.engines.transformers.multimodal import audio_window

        window = audio_window(self.processor) if self.processor is not None else None
        notes = []
        for item in media:
            seconds = getattr(item, "heard_seconds", None)
            if window and seconds and seconds > window + 1e-6:
                notes.append(
                    f"{self.name} hears only the first {window:g} s of each clip: {item.name} "
                    f"({seconds:.1f} s) is cut. Ask about later parts with --clip START,END."
                )
        return notes

    def template_text(self, messages: list[Message]) -> str:
        """The chat template's text of ``messages``, without reading their media (the
        response cache keys a dataset item's column on it before its media are decoded)."""
        from lmwidgets.engines.transformers.chat import render_text

        reader = self.processor if self.processor is not None else self.tokenizer
        return render_text(reader, messages)

    def render(self, messages: list[Message], media: Sequence[MediaInput] = ()) -> Rendered:
        from lmwidgets.engines.transformers.chat import encode, render_text

        if self.processor is not None:
            from lmwidgets.engines.transformers import multimodal

            text = render_text(self.processor, messages)
            ids, extra, size = multimodal.encode(self, text, media)
            return Rendered(text, len(ids), (ids, extra or None), size)
        text = render_text(self.tokenizer, messages)
        ids = encode(self.tokenizer, text)
        return Rendered(text, len(ids), (ids, None))

    def text_of(self, output: RowOutput, *, streaming: bool = False) -> str:
        text = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
        return text.rstrip("\ufffd") if streaming else text  # an unfinished multi-byte character

    # -- generation -------------------------------------------------------------------------

    def prefix_cache(self):
        """This model's prefix cache (made on first use; dropped when the model is unloaded)."""
        from lmwidgets.engines.transformers.prefix_cache import PrefixCache

        cache = self.extras.get("prefix_cache")
        if cache is None:
            cache = self.extras["prefix_cache"] = PrefixCache()
        return cache

    def _forced_ids(self, row: PromptRow) -> tuple[int, ...]:
        """A fork's forced start as token ids (its text is tokenized when only that is given)."""
        if row.forced_ids or not row.forced_text:
            return tuple(int(i) for i in row.forced_ids)
        return tuple(self.tokenizer.encode(row.forced_text, add_special_tokens=False))

    def _grammars(self):
        """This model's compiled grammars (made on first use; kept across runs)."""
        from lmwidgets.engines.grammar import CompiledGrammars
        from lmwidgets.engines.transformers.generation import eos_token_ids

        grammars = self.extras.get("grammars")
        if grammars is None:
            output = self.model.get_output_embeddings()
            n_vocab = None if output is None else int(output.weight.shape[0])
            eos = eos_token_ids(self.model, self.tokenizer)
            grammars = self.extras["grammars"] = CompiledGrammars(self.tokenizer, eos, n_vocab)
        return grammars

    def _matcher(self, constraint: Any):
        return None if constraint is None else self._grammars().matcher(constraint)

    def check_constraint(self, constraint: Any) -> None:
        """Raise a :class:`~lmwidgets.errors.ConstraintError` when ``constraint`` cannot be
        enforced with this model's tokenizer (compiles it: later runs reuse it)."""
        from lmwidgets.engines.grammar import check_constraint

        check_constraint(constraint)
        self._matcher(constraint)

    def generate(
        self,
        rows: Sequence[PromptRow],
        settings: GenerationSettings,
        *,
        stop: StopSignal,
        on_step: StepCallback | None = None,
        ignore_eos: bool = False,
        prefix_reuse: bool = True,
    ) -> BatchOutcome:
        from lmwidgets.engines.transformers.adapters import generation_model
        from lmwidgets.engines.transformers.generation import Row, generate_batch
        from lmwidgets.engines.transformers.prefix_cache import adapter_key

        token_rows = [
            Row(
                row.prompt.payload[0],
                row.adapter,
                temperature=row.temperature,
                top_p=row.top_p,
                extra=row.prompt.payload[1],
                forced=self._forced_ids(row),
                matcher=self._matcher(row.constraint),
                seed=row.seed,
            )
            for row in rows
        ]
        return generate_batch(
            generation_model(self),
            self.tokenizer,
            token_rows,
            settings,
            device=self.device,
            stop=stop,
            on_step=on_step,
            ignore_eos=ignore_eos,
            route_adapters=bool(self.adapters),
            prefix_cache=self.prefix_cache() if prefix_reuse else None,
            adapter_keys=[adapter_key(self, row.adapter) for row in rows],
            static_cache=bool(self.extras.get("static_cache")),
        )

    def score_choices(self, requests: Sequence[Any], *, stop: StopSignal | None = None) -> Any:
        """Each request's choices scored after its prompt (see :mod:`.choices`)."""
        from lmwidgets.engines.transformers.choices import score_requests

        return score_requests(self, requests, stop)

    # -- adapters ---------------------------------------------------------------------------

    def attach_adapter(
        self, path: Any, *, name: str | None = None, scale: float = 1.0, allow_pickle: bool = False
    ) -> Any:
        """Attach a peft LoRA adapter directory (see :mod:`.adapters`)."""
        from lmwidgets.engines.transformers.adapters import load_adapter

        return load_adapter(self, path, name=name, scale=scale, allow_pickle=allow_pickle)

    def detach_adapter(self, name: str) -> Any:
        """Detach adapter ``name`` and free it; the last one restores the plain model."""
        from lmwidgets.engines.transformers.adapters import unload_adapter

        return unload_adapter(self, name)

    def set_cpu_kernels(self, kernels: str) -> None:
        """Run the loaded model with other CPU linear kernels (``%lm load --cpu-kernels`` of a
        model loaded already): no reload, the weights stay where they are."""
        from lmwidgets.engines.transformers.loading import _memory_bytes, apply_cpu_kernels

        self.cpu_kernels, self.prepacked_layers, released = apply_cpu_kernels(self.model, kernels)
        self.memory_bytes = _memory_bytes(self.model, self.prepacked_layers, released)

    # -- lifetime ---------------------------------------------------------------------------

    def unload(self) -> None:
        device = self.device
        self.model = None
        self.tokenizer = None
        self.processor = None
        self.adapters.clear()
        self.extras.clear()
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
        release_heap()


#: The name this class had before engines existed (kept for code written against it).
LoadedModel = TransformersEngine
