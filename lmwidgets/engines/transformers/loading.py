"""Loading models: device and dtype choice, safe loading, the dequantized-GGUF cache, progress.

Progress names every step as it starts ("Reading the tokenizer from the GGUF file", "Reading the
GGUF file", "Converting weights", "Moving to cpu", ...); steps with a library progress bar of their
own (de-quantizing a GGUF, loading weights) report it within their share of the bar, and the
fraction never goes back. Library warnings and log notes are silenced while loading
(:func:`lmwidgets.engines.transformers.quiet.quiet_libraries`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmwidgets.checks import is_out_of_memory, optional_whole_number
from lmwidgets.engines.transformers.cache import cache_dir, sha256_file, sha256_files
from lmwidgets.engines.transformers.engine import TransformersEngine
from lmwidgets.engines.transformers.quiet import quiet_libraries
from lmwidgets.engines.transformers.sources import ModelSource, check_directory, weight_files
from lmwidgets.errors import (
    DeviceError,
    InvalidArgumentError,
    LoadOutOfMemoryError,
    ModelLoadError,
    ModelNotFoundError,
    RemoteCodeError,
    UnsafeWeightsError,
)

#: ``progress(fraction, message)``: called while loading, fraction in [0, 1].
ProgressCallback = Callable[[float, str], None]

DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZATIONS = ("4bit", "8bit")
_GGUF_CACHE_VERSION = "1"


def _device_index(device: str) -> int | None:
    """The N of a ``cuda``/``cuda:N`` name (0 for ``cuda``), None for ``auto`` or ``cpu``;
    anything else is refused (no torch needed: ``%lm load`` checks it before loading)."""
    if device in ("auto", "cpu"):
        return None
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise InvalidArgumentError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}.")
    return int(match.group(1) or 0)


def pick_device(device: str | None = "auto") -> str:
    """``auto`` is ``cuda`` where a GPU exists, else ``cpu``; ``cuda:N`` is checked to exist."""
    import torch

    device = (device or "auto").strip().lower()
    index = _device_index(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if index is None:
        return "cpu"
    if not torch.cuda.is_available():
        raise DeviceError(
            f"--device {device} asks for a GPU, but torch sees no CUDA device here "
            f"(torch {torch.__version__}). Use --device cpu or --device auto."
        )
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)."
        )
    return device


def check_spelling(device: Any, dtype: Any, cpu_kernels: Any, prepack: Any) -> None:
    """What ``%lm load`` can refuse before its progress bar shows (no torch needed): a
    ``--device`` or ``--dtype`` it does not know, ``--cpu-kernels`` against ``--no-prepack``."""
    _device_index((device or "auto").strip().lower())
    pick_dtype(dtype, "cpu")
    _kernels_asked(prepack, cpu_kernels)


def pick_dtype(dtype: str | None, device: str) -> str:
    """``auto`` is bfloat16 on CUDA, float32 on CPU."""
    dtype = (dtype or "auto").strip().lower()
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


@dataclass(frozen=True)
class _Span:
    """The share of the overall bar a library progress bar fills, and the step it names."""

    lo: float
    hi: float
    label: str


class _Monotonic:
    """A :data:`ProgressCallback` whose fraction never goes back (a second library bar that
    starts at its share's beginning keeps the bar where it was)."""

    def __init__(self, report: ProgressCallback) -> None:
        self._report = report
        self._highest = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        self._highest = max(self._highest, min(1.0, fraction))
        self._report(self._highest, message)


class _BarProxy:
    """A tqdm stand-in that forwards a library's progress bar to a :data:`ProgressCallback`."""

    def __init__(
        self, iterable=None, total=None, desc=None, report=None, span=(0.0, 1.0), label=None, **_
    ):
        self.iterable = iterable
        self.total = (
            total
            if total is not None
            else (len(iterable) if hasattr(iterable, "__len__") else None)
        )
        self.desc = (desc or "Loading").rstrip(".: ")
        self.label = label
        self.n = 0
        self._report = report
        self._span = span
        self._last = 0.0

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._report is None or not self.total or (not force and now - self._last < 0.1):
            return
        self._last = now
        lo, hi = self._span
        self._report(lo + (hi - lo) * min(1.0, self.n / self.total), self.label or self.desc)

    def __iter__(self):
        for item in self.iterable or ():
            yield item
            self.update(1)
        self._emit(force=True)

    def update(self, n=1):
        self.n += n
        self._emit()

    def close(self):
        self._emit(force=True)

    def set_description(self, desc=None, refresh=True):
        self.desc = desc or self.desc

    def set_postfix(self, *args, **kwargs):
        pass

    def refresh(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _weight_spans(gguf: bool) -> Callable[[str], _Span]:
    """Which share of the bar a library bar fills, by its description: a GGUF's de-quantization
    (then its weights) or a directory's weights."""

    def span_for(desc: str) -> _Span:
        if gguf and ("gguf" in desc.lower() or "quantiz" in desc.lower()):
            return _Span(0.30, 0.75, "Converting weights (de-quantizing the GGUF)")
        if gguf:
            return _Span(0.75, 0.85, "Loading weights")
        return _Span(0.25, 0.85, "Loading weights")

    return span_for


@contextlib.contextmanager
def _route_progress(
    report: ProgressCallback | None, span_for: Callable[[str], _Span]
) -> Iterator[None]:
    """Send transformers' progress bars (weights, GGUF de-quantization) to ``report``, each in
    the share ``span_for(its description)`` gives it."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    def factory(*args, **kwargs):
        span = span_for(str(kwargs.get("desc") or ""))
        return _BarProxy(*args, report=report, span=(span.lo, span.hi), label=span.label, **kwargs)

    def hook(_factory, args, kwargs):
        return factory(*args, **kwargs)

    previous_hook = hf_logging.set_tqdm_hook(hook)
    previous_gguf_tqdm = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = factory
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous_hook)
        if previous_gguf_tqdm is not None:
            gguf_utils.tqdm = previous_gguf_tqdm


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _gguf_cache_path(digest: str) -> Path:
    import transformers

    major = transformers.__version__.split(".")[0]
    return cache_dir() / "gguf" / f"{digest[:32]}-tf{major}-v{_GGUF_CACHE_VERSION}"


def _fsync(path: Path) -> None:
    """Flush a written file to disk."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


#: The cache's on-disk format: 3 is a standard checkpoint any tool loads (vLLM, ``transformers
#: serve``): tied weights under the name ``save_pretrained`` uses (``model.embed_tokens.weight``;
#: format 1 kept only ``lm_head.weight``) and a config naming its architecture (format 2 named
#: none). lmwidgets reads them all; an older cache is rewritten once when used.
CACHE_FORMAT = 3


def standard_state_dict(model: Any) -> dict[str, Any]:
    """The model's weights as ``save_pretrained`` names them: each tied weight once, under its
    source's name (``lm_head.weight`` -> ``model.embed_tokens.weight``)."""
    state = model.state_dict()
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(
        model, "_tied_weights_keys", None
    )
    if isinstance(tied, dict):
        for target, source in tied.items():
            if target in state and source in state:
                del state[target]
    return {name: tensor.contiguous() for name, tensor in state.items()}


def _save_dequantized(model: Any, tokenizer: Any, target: Path) -> None:
    """Write a GGUF model's de-quantized float32 weights as a standard transformers directory,
    atomically (a cache another tool, such as a vLLM server, can load as it is)."""
    import copy

    import safetensors.torch

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        safetensors.torch.save_file(
            standard_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"}
        )
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(model).__name__]  # GGUF configs name none; tools need it
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # On disk before it is marked complete: a crash cannot leave a truncated cache behind.
        _fsync(tmp / "model.safetensors")
        marker = {"complete": True, "format": CACHE_FORMAT}
        (tmp / "lmwidgets-cache.json").write_text(json.dumps(marker))
        if target.exists():  # an older format being upgraded: swap it out
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=".old-"))
            os.replace(target, old / "cache")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another kernel wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def cache_format(directory: Path) -> int:
    """The format of a de-quantized cache directory (1 before formats were recorded)."""
    try:
        marker = json.loads((directory / "lmwidgets-cache.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(marker.get("format", 1)) if isinstance(marker, dict) else 0


def _hub_snapshot(repo_id: str, allow_pickle: bool) -> tuple[Path, str | None]:
    """Download (or find in the local hub cache) the files of a hub model; (dir, revision)."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
    if allow_pickle:
        patterns += ["*.bin"]
    errors = []
    for local_only in (False, True):
        try:
            path = Path(
                snapshot_download(repo_id, allow_patterns=patterns, local_files_only=local_only)
            )
            revision = path.name if re.fullmatch(r"[0-9a-f]{40}", path.name) else None
            return path, revision
        except Exception as exc:  # network errors, missing repo, missing cache
            errors.append(f"{type(exc).__name__}: {exc}")
    raise ModelNotFoundError(
        f"Cannot get {repo_id!r} from the hub, and it is not in the local hub cache. "
        "Check the id and your network, or give a local directory or .gguf file. "
        f"({errors[0].splitlines()[0][:200]})"
    )


def _load_tokenizer(directory: Path, gguf_file: str | None, trust_remote_code: bool):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(directory), gguf_file=gguf_file, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _multimodal_types() -> frozenset[str]:
    """Model types transformers serves as media-text models: ``AutoModelForMultimodalLM``'s
    (image-text, Qwen2-Audio, Voxtral, Granite Speech, Gemma 3n, Phi-4-multimodal...), or
    only image-text-to-text in a transformers without it."""
    from transformers.models.auto import modeling_auto

    names = getattr(modeling_auto, "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES", None)
    if names is None:
        names = modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    return frozenset(names)


def is_multimodal(directory: Path, gguf_file: str | None) -> bool:
    """Whether ``directory`` holds a media-text model: a multimodal architecture with a
    processor beside it (images, audio or both; the processor says which)."""
    if gguf_file:
        return False
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return False
    has_processor = any(
        (directory / name).is_file()
        for name in ("preprocessor_config.json", "processor_config.json")
    )
    return config.get("model_type") in _multimodal_types() and has_processor


#: The name this check had when only images were media.
is_vision_language = is_multimodal


def _load_processor(directory: Path, trust_remote_code: bool):
    from transformers import AutoProcessor

    from lmwidgets.engines.transformers.multimodal import processor_kinds

    processor = AutoProcessor.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
    if getattr(processor, "tokenizer", None) is None or not processor_kinds(processor):
        raise ModelLoadError(
            f"{directory} has a multimodal config but its processor has no tokenizer, or neither "
            "an image processor nor an audio feature extractor."
        )
    tokenizer = processor.tokenizer
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor


def check_acceleration(
    device: str, quantize: str | None, compile: bool, source: ModelSource
) -> None:
    """``--quantize`` and ``--compile`` need CUDA (and bitsandbytes); say so before loading."""
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise InvalidArgumentError(f"--quantize must be 4bit or 8bit, not {quantize!r}.")
        if not device.startswith("cuda"):
            raise DeviceError(
                f"--quantize {quantize} uses bitsandbytes, which needs a CUDA GPU; this kernel "
                f"loads on {device}. Load without --quantize (or with --dtype bfloat16 to halve "
                "the memory), or on a machine with a GPU."
            )
        if source.gguf_file:
            raise InvalidArgumentError(
                "--quantize applies to safetensors models; a GGUF file is already quantized "
                "(lmwidgets de-quantizes it). Load it without --quantize."
            )
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise DeviceError(
                f"--quantize {quantize} needs the bitsandbytes package: "
                "`pip install bitsandbytes` (or `pip install lmwidgets[gpu]`), then load again."
            )
    if compile and not device.startswith("cuda"):
        raise DeviceError(
            f"--compile (a static cache and torch.compile for decoding) is for CUDA GPUs; this "
            f"kernel loads on {device}, where lmwidgets already packs weights for fast decoding."
        )


def _quantization_config(quantize: str, dtype):
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
    )


def _load_weights(
    directory: Path,
    gguf_file: str | None,
    dtype,
    *,
    allow_pickle,
    trust_remote_code,
    vision: bool = False,
    quantize: str | None = None,
    device: str = "cpu",
):
    import transformers

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if quantize:
        kwargs["quantization_config"] = _quantization_config(quantize, dtype)
        kwargs["device_map"] = {"": device}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    elif not allow_pickle:
        kwargs["use_safetensors"] = True
    auto = transformers.AutoModelForCausalLM
    if vision:  # every media-text model (images, audio); older transformers: image-text only
        auto = getattr(transformers, "AutoModelForMultimodalLM", None) or (
            transformers.AutoModelForImageTextToText
        )
    return auto.from_pretrained(str(directory), **kwargs)


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt + answer) the model reads; None when nothing says."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    context = getattr(text_config, "max_position_embeddings", None)
    if context is None:
        limit = getattr(tokenizer, "model_max_length", None)
        context = int(limit) if limit and limit < 10_000_000 else None
    return context


def _translate_load_error(exc: BaseException, source: ModelSource) -> BaseException:
    text = str(exc)
    if "trust_remote_code" in text:
        return RemoteCodeError(
            f"{source.spec!r} needs custom code from its repository (trust_remote_code). If you "
            "trust it, opt in with `%lm load SOURCE --trust-remote-code`."
        )
    if is_out_of_memory(exc):
        return LoadOutOfMemoryError(
            f"Not enough memory to load {source.spec!r}. Unload other models (`%lm unload NAME`), "
            "pick a smaller dtype (--dtype bfloat16) or a smaller model."
        )
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return ModelLoadError(f"Could not load {source.spec!r}: {first}")


@dataclass
class _Located:
    """Where a model's files are and what identifies its weights."""

    directory: Path
    gguf_file: str | None
    weights_sha256: str | None
    revision: str | None = None
    from_cache: bool = False


def _import_libraries() -> None:
    """Import what loading needs (a no-op once ``%load_ext lmwidgets`` imported it in the
    background), so that ``load_steps_s`` shows the imports as a step of their own."""
    import importlib

    from lmwidgets.engines import WARM_UP, background_import

    background_import.wait()
    for name in WARM_UP.get("transformers", ()):
        importlib.import_module(name)


def _locate(
    source: ModelSource, allow_pickle: bool, trust_remote_code: bool, report: ProgressCallback
) -> _Located:
    """Find the weights (a hub snapshot, a directory, a GGUF file or its de-quantized cache)."""
    report(0.02, "Locating weights")
    directory, revision = Path(source.location), None
    if source.kind == "hub":
        directory, revision = _hub_snapshot(source.location, allow_pickle)
        check_directory(directory, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if source.gguf_file:
        report(0.05, "Hashing the GGUF file")
        digest = sha256_file(directory / source.gguf_file)
        cached = _gguf_cache_path(digest)
        if (cached / "lmwidgets-cache.json").is_file():
            return _Located(cached, None, digest, revision, from_cache=True)
        return _Located(directory, source.gguf_file, digest, revision)
    report(0.05, "Hashing weights")
    safe, pickles = weight_files(directory)
    digest = sha256_files(safe or pickles) if (safe or pickles) else None
    return _Located(directory, None, digest, revision)


def _load_text_side(located: _Located, trust_remote_code: bool, report: ProgressCallback):
    """(tokenizer, processor): a multimodal model's processor carries its tokenizer."""
    if is_multimodal(located.directory, located.gguf_file):
        report(0.15, "Loading processor")
        processor = _load_processor(located.directory, trust_remote_code)
        return processor.tokenizer, processor
    step = "Reading the tokenizer from the GGUF file" if located.gguf_file else "Loading tokenizer"
    report(0.15, step)
    return _load_tokenizer(located.directory, located.gguf_file, trust_remote_code), None


def _pack_for_cpu(
    model: Any, kernels: str, device: str, dtype: str, report
) -> tuple[Any, int, int]:
    """(kernel choice or None, layers packed, dense bytes released) on CPU in float32: the
    linear layers' kernels chosen by measurement (see :mod:`.kernel_choice`) or as asked."""
    if device != "cpu" or dtype != "float32":
        return None, 0, 0
    report(0.95, "Choosing CPU kernels" if kernels == "auto" else "Packing weights for CPU")
    return apply_cpu_kernels(model, kernels)


def apply_cpu_kernels(model: Any, kernels: str) -> tuple[Any, int, int]:
    """Set ``model``'s linear layers up for ``kernels`` (at load, or switching a loaded model):
    (kernel choice, layers packed, dense bytes given back to the OS)."""
    from lmwidgets.engines.transformers import cpu_kernels
    from lmwidgets.engines.transformers.engine import release_heap
    from lmwidgets.engines.transformers.kernel_choice import choose_kernels

    choice = choose_kernels(model, kernels)
    packed = cpu_kernels.packed_layers(model)
    released = cpu_kernels.release_dense_pages(model) if packed else 0
    release_heap()  # packing's and fusion's temporaries (stacked weights), freed but kept by glibc
    return choice, packed, released


def _kernels_asked(prepack: bool | None, cpu_kernels: Any) -> str:
    """``--cpu-kernels`` checked, with the older ``prepack`` flag as its alias (False: plain,
    True: packed); the two disagreeing is an error."""
    from lmwidgets.engines.transformers.kernel_choice import check_kernels

    kernels = check_kernels(cpu_kernels)
    if prepack is None:
        return kernels
    implied = "packed" if prepack else "plain"
    if cpu_kernels is not None and kernels != implied:
        flag = "prepack=True" if prepack else "--no-prepack"
        raise InvalidArgumentError(
            f"{flag} and --cpu-kernels {kernels} disagree: give only --cpu-kernels."
        )
    return implied


def cpu_kernels_option(
    prepack: bool | None, cpu_kernels: str | None, device: str = "cpu", dtype: str = "float32"
) -> str:
    """``cpu_kernels`` checked before anything loads, with the older ``prepack`` flag as its
    alias (False: plain, True: packed); the two disagreeing is an error, and so is a kernel
    asked for a model that is not float32 on the CPU, or one this CPU cannot run."""
    from lmwidgets.engines.transformers.kernel_choice import check_supported

    kernels = _kernels_asked(prepack, cpu_kernels)
    if cpu_kernels is not None and kernels != "auto" and (device, dtype) != ("cpu", "float32"):
        raise InvalidArgumentError(
            f"--cpu-kernels {kernels} applies to float32 models on the CPU; this one loads on "
            f"{device} in {dtype}. Drop --cpu-kernels."
        )
    if kernels in ("packed", "bf16") and device == "cpu":
        check_supported(kernels)
    return kernels


def _memory_bytes(model: Any, packed: int, released: int) -> int:
    """Bytes the model holds: parameters and buffers, plus packed copies, minus released pages."""
    memory = sum(p.numel() * p.element_size() for p in model.parameters())
    memory += sum(b.numel() * b.element_size() for b in model.buffers())
    if packed:
        from lmwidgets.engines.transformers.cpu_kernels import packed_bytes

        memory += packed_bytes(model) - released  # dense pages left on disk (memory-mapped)
    return memory


def load_from_source(
    source: ModelSource,
    *,
    name: str,
    device: str,
    dtype: str,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    prepack: bool | None = None,
    max_images: int | None = None,
    quantize: str | None = None,
    compile: bool = False,
    cpu_kernels: str | None = None,
) -> TransformersEngine:
    """Load ``source`` onto ``device`` in ``dtype`` as a :class:`TransformersEngine`.

    ``cpu_kernels`` (on CPU in float32): ``auto`` (default) times packed oneDNN against plain
    PyTorch linear layers on this CPU and picks per shape and batch size (cached per CPU),
    ``packed``, ``plain`` or ``bf16`` (lower precision, opt-in); see
    :mod:`~lmwidgets.engines.transformers.kernel_choice`. ``prepack`` is the older switch
    (False: plain, True: packed). Multimodal models (an image- or audio-text architecture with
    a processor) are loaded with their processor;
    ``max_images`` overrides how many images one prompt may hold. On CUDA, ``quantize``
    (``4bit``/``8bit``, bitsandbytes) fits larger models and ``compile`` decodes with a static
    cache (lengths padded to buckets) and torch.compile.
    """
    check_acceleration(device, quantize, compile, source)
    optional_whole_number(max_images, "--max-images", minimum=1)
    kernels = cpu_kernels_option(prepack, cpu_kernels, device, dtype)
    report = _Monotonic(progress or (lambda fraction, message: None))
    started = time.perf_counter()
    try:
        with quiet_libraries():
            report(0.01, "Importing torch and transformers")
            _import_libraries()
            steps = {"imports": time.perf_counter() - started}
            located = _locate(source, allow_pickle, trust_remote_code, report)
            steps["locate"] = time.perf_counter() - started - sum(steps.values())
            tokenizer, processor = _load_text_side(located, trust_remote_code, report)
            steps["tokenizer"] = time.perf_counter() - started - sum(steps.values())
            model = _load_model(
                located,
                tokenizer,
                source,
                device,
                dtype,
                report,
                allow_pickle=allow_pickle,
                trust_remote_code=trust_remote_code,
                vision=processor is not None,
                quantize=quantize,
            )
            steps["weights"] = time.perf_counter() - started - sum(steps.values())
            choice, packed, released = _pack_for_cpu(model, kernels, device, dtype, report)
            steps["cpu_kernels"] = time.perf_counter() - started - sum(steps.values())
    except (
        UnsafeWeightsError,
        RemoteCodeError,
        ModelNotFoundError,
        ModelLoadError,
        DeviceError,
        InvalidArgumentError,
    ):
        raise
    except (
        OSError,
        ValueError,
        RuntimeError,
        KeyError,
        TypeError,
        ImportError,
        MemoryError,
    ) as exc:
        raise _translate_load_error(exc, source) from exc
    report(1.0, "Ready")
    return TransformersEngine(
        name=name,
        source=source,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        weights_sha256=located.weights_sha256,
        revision=located.revision,
        n_params=sum(p.numel() for p in model.parameters()),
        memory_bytes=_memory_bytes(model, packed, released),
        load_seconds=time.perf_counter() - started,
        context_length=context_length(model, tokenizer),
        kind=_engine_kind(processor),
        processor=processor,
        from_cache=located.from_cache,
        prepacked_layers=packed,
        cpu_kernels=choice,
        extras=_extras(steps, max_images, quantize, compile),
    )


def _engine_kind(processor: Any) -> str:
    """``vision`` for models that take images (and maybe audio), ``audio`` for audio-only ones,
    ``text`` without a processor."""
    from lmwidgets.engines.transformers.multimodal import processor_kinds

    kinds = processor_kinds(processor)
    return "vision" if "image" in kinds else "audio" if kinds else "text"


def _extras(
    steps: dict[str, float], max_images: int | None, quantize: str | None, compile: bool
) -> dict[str, Any]:
    """The engine's extras at load: seconds per load step, and the options that apply."""
    return {
        "load_steps_s": {step: round(seconds, 3) for step, seconds in steps.items()},
        **({} if max_images is None else {"max_images": max_images}),
        **({"quantize": quantize} if quantize else {}),
        **({"static_cache": True} if compile else {}),
    }


def _load_model(
    located: _Located,
    tokenizer: Any,
    source: ModelSource,
    device: str,
    dtype: str,
    report: ProgressCallback,
    **options: Any,
) -> Any:
    """The model's weights, cached de-quantized (GGUF), on ``device`` in ``dtype``, in eval mode."""
    import torch

    torch_dtype = _torch_dtype(dtype)
    report(0.25, "Reading the GGUF file" if located.gguf_file else "Loading weights")
    with _route_progress(report, _weight_spans(bool(located.gguf_file))):
        load_dtype = torch.float32 if located.gguf_file else torch_dtype
        model = _load_weights(
            located.directory, located.gguf_file, load_dtype, device=device, **options
        )
    stale = located.from_cache and cache_format(located.directory) < CACHE_FORMAT
    if (located.gguf_file or stale) and located.weights_sha256:
        report(0.86, "Caching de-quantized weights")
        cached = _gguf_cache_path(located.weights_sha256)
        with contextlib.suppress(OSError):
            _save_dequantized(model, tokenizer, cached)
        if located.gguf_file and cache_format(cached) >= CACHE_FORMAT:
            # The de-quantized weights live in this process's heap, where packing cannot give
            # their pages back (a first load held 1.1 GB, later ones 0.54); read from the cache
            # file they are file-backed pages, as on every later load.
            report(0.88, "Reading the cached weights")
            del model
            model = _load_weights(cached, None, load_dtype, device=device, **options)
    if not options.get("quantize"):  # bitsandbytes placed the quantized weights already
        report(0.9, f"Moving to {device}")
        model = model.to(device=device, dtype=torch_dtype)
    model.eval()
    return model


def served_checkpoint(source: Any = None) -> Path:
    """A standard transformers directory holding ``source``'s weights (None: the embedded
    default, whose de-quantized cache is made or upgraded here), e.g. to serve the same model
    with vLLM (``make serve``) and compare it with the kernel's copy."""
    from lmwidgets.engines.transformers.sources import resolve_source

    resolved = resolve_source(source)
    if not resolved.gguf_file:
        return Path(resolved.location)
    digest = sha256_file(Path(resolved.location) / resolved.gguf_file)
    cached = _gguf_cache_path(digest)
    if cache_format(cached) < CACHE_FORMAT:
        engine = load_from_source(
            resolved, name="export", device="cpu", dtype="float32", prepack=False
        )
        engine.unload()
    return cached


if __name__ == "__main__":  # `python -m lmwidgets.engines.transformers.loading`: the directory
    print(served_checkpoint())
