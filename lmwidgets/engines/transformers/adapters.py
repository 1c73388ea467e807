"""LoRA adapters attached to a loaded model on the fly (peft), as a comparison axis.

Loading an adapter attaches it without reloading the base model and does not activate it: every
generation names, per row, the adapter it runs with (peft's ``adapter_names``; ``__base__`` for the
base model), so a batch can mix base and adapters and a "base" column is never silently adapted.

Adapters are validated before anything changes: safetensors weights (pickle only with an explicit
opt-in), a LoRA config (``trust_remote_code``/auto-map keys are ignored, never honoured), target
modules that exist in the model and tensor shapes that fit it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmwidgets.engines.base import BASE_NAMES, adapter_label, resolve_adapter
from lmwidgets.engines.registry import format_bytes, format_count
from lmwidgets.engines.transformers.cache import sha256_file
from lmwidgets.errors import AdapterError, NameTakenError, UnsafeWeightsError

if TYPE_CHECKING:
    from lmwidgets.engines.transformers.engine import TransformersEngine as LoadedModel

__all__ = [
    "BASE_NAMES",
    "AdapterInfo",
    "adapter_label",
    "load_adapter",
    "resolve_adapter",
    "unload_adapter",
]

_IGNORED_KEYS = ("auto_mapping", "auto_map", "trust_remote_code")


class AdapterWarning(UserWarning):
    """An adapter loads, but something about it deserves attention (e.g. another base name)."""


@dataclass
class AdapterInfo:
    """An adapter attached to a model: where it came from and what exactly its weights are."""

    name: str
    model: str
    path: str
    weights_file: str
    weights_sha256: str
    config_sha256: str
    rank: int
    alpha: float
    target_modules: list[str]
    scale: float
    parameters: int
    bytes: int
    base_model_name_or_path: str | None = None
    ignored_config_keys: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What a run record says about this adapter."""
        return {
            "name": self.name,
            "path": self.path,
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
            "config_sha256": self.config_sha256,
            "rank": self.rank,
            "alpha": self.alpha,
            "target_modules": self.target_modules,
            "scale": self.scale,
            "base_model_name_or_path": self.base_model_name_or_path,
        }

    def summary(self) -> str:
        """One line for ``%lm adapter list``."""
        return (
            f"{self.name} · on {self.model} · rank {self.rank} · targets {', '.join(self.target_modules)} · "
            f"scale {self.scale:g} · {format_count(self.parameters)} params ({format_bytes(self.bytes)})"
        )


def _read_config(directory: Path) -> tuple[dict[str, Any], list[str]]:
    path = directory / "adapter_config.json"
    if not path.is_file():
        raise AdapterError(
            f"{str(directory)!r} has no adapter_config.json, so it is not a peft adapter directory "
            "(save one with `model.save_pretrained(dir)` on a peft model)."
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"Cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"{str(path)!r} is not a JSON object.")
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise AdapterError(
            f"{str(directory)!r} is a {peft_type} adapter; lmwidgets attaches LoRA adapters."
        )
    if config.get("use_dora"):
        raise AdapterError(
            f"{str(directory)!r} is a DoRA adapter; peft cannot mix DoRA adapters with others in one "
            "batch, so lmwidgets attaches plain LoRA adapters only."
        )
    ignored = [key for key in _IGNORED_KEYS if config.get(key)]
    for key in _IGNORED_KEYS:
        config.pop(key, None)
    return config, ignored


def _weights_file(directory: Path, allow_pickle: bool) -> Path:
    safe = directory / "adapter_model.safetensors"
    if safe.is_file():
        return safe
    pickled = directory / "adapter_model.bin"
    if pickled.is_file():
        if not allow_pickle:
            raise UnsafeWeightsError(
                f"{str(directory)!r} holds its adapter as pickle (adapter_model.bin), which can run "
                "arbitrary code when loaded. Re-save it as safetensors (peft's save_pretrained does "
                "by default), or, if you trust it, opt in with `--allow-pickle`."
            )
        return pickled
    raise AdapterError(f"{str(directory)!r} has no adapter_model.safetensors.")


def _tensor_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    import torch

    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    return {key: tuple(value.shape) for key, value in state.items()}


def _module_path(key: str) -> tuple[str, str] | None:
    """``base_model.model.X.lora_A.weight`` -> (``X``, ``A``)."""
    match = re.match(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
    return (match.group(1), match.group(2)) if match else None


def check_compatible(model: Any, shapes: dict[str, tuple[int, ...]], directory: Path) -> None:
    """Every LoRA tensor targets an existing linear module and fits its shape."""
    import torch

    modules = dict(model.named_modules())
    problems: list[str] = []
    seen = 0
    for key, shape in shapes.items():
        parsed = _module_path(key)
        if parsed is None:
            continue
        path, which = parsed
        seen += 1
        module = modules.get(path)
        if module is None:
            problems.append(f"{path} does not exist in this model")
            continue
        base = getattr(module, "base_layer", module)
        if not isinstance(base, torch.nn.Linear):
            problems.append(f"{path} is a {type(base).__name__}, not a linear layer")
            continue
        if len(shape) != 2:
            problems.append(f"{key} has shape {shape}")
        elif which == "A" and shape[1] != base.in_features:
            problems.append(
                f"{path}: the adapter expects {shape[1]} inputs, the model has {base.in_features}"
            )
        elif which == "B" and shape[0] != base.out_features:
            problems.append(
                f"{path}: the adapter expects {shape[0]} outputs, the model has {base.out_features}"
            )
        if len(problems) >= 3:
            break
    if not seen and not problems:
        problems.append("it holds no LoRA weights (lora_A/lora_B)")
    if problems:
        raise AdapterError(
            f"The adapter in {str(directory)!r} does not fit this model ({'; '.join(problems)}). "
            "It was probably trained for another architecture or size; nothing was changed."
        )


def _peft_model(loaded: LoadedModel):
    return loaded.extras.get("peft_model")


def generation_model(loaded: LoadedModel) -> Any:
    """The module to call ``generate`` on: the peft wrapper once adapters are attached."""
    return _peft_model(loaded) or loaded.model


def _set_scale(peft_model: Any, name: str, scale: float) -> None:
    from peft.tuners.lora import LoraLayer

    for module in peft_model.modules():
        if isinstance(module, LoraLayer) and name in module.scaling:
            module.set_scale(name, scale)


def load_adapter(
    loaded: LoadedModel,
    path: str | Path,
    *,
    name: str | None = None,
    scale: float = 1.0,
    allow_pickle: bool = False,
) -> AdapterInfo:
    """Attach the LoRA adapter in ``path`` to ``loaded`` (no reload, not activated)."""
    directory = Path(os.path.expanduser(path))  # an unknown ~user stays as written
    if not directory.exists():
        raise AdapterError(f"No adapter at {str(directory)!r}: the directory does not exist.")
    if not directory.is_dir():
        raise AdapterError(f"{str(directory)!r} is a file; give the adapter's directory.")
    name = _adapter_name(loaded, directory, name)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale == scale:
        raise AdapterError(f"--scale must be a number, not {scale!r}.")
    config, ignored = _read_config(directory)
    weights = _weights_file(directory, allow_pickle)
    check_compatible(loaded.model, _tensor_shapes(weights), directory)
    base_name = config.get("base_model_name_or_path")
    _warn_if_made_for_another(loaded, name, base_name)
    peft_model = _attach(loaded, directory, config, weights, name, float(scale))
    parameters = sum(
        p.numel() for n, p in peft_model.named_parameters() if f".{name}." in n and "lora_" in n
    )
    targets = config.get("target_modules") or []
    info = AdapterInfo(
        name=name,
        model=loaded.name,
        path=str(directory.resolve()),
        weights_file=weights.name,
        weights_sha256=sha256_file(weights),
        config_sha256=sha256_file(directory / "adapter_config.json"),
        rank=int(config.get("r", 8)),
        alpha=float(config.get("lora_alpha", 8)),
        target_modules=sorted(targets) if isinstance(targets, list) else [str(targets)],
        scale=float(scale),
        parameters=parameters,
        bytes=parameters * next(loaded.model.parameters()).element_size(),
        base_model_name_or_path=base_name,
        ignored_config_keys=ignored,
    )
    loaded.adapters[name] = info
    return info


def _adapter_name(loaded: LoadedModel, directory: Path, name: str | None) -> str:
    """The name the adapter is attached under (``name``, or the directory's), checked: a
    plain word that is not a base name and not taken on ``loaded``."""
    name = (name or re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name)).strip()
    if not name or name.lower() in BASE_NAMES or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise AdapterError(
            f"{name!r} cannot name an adapter: use letters, digits, '.', '_' or '-' (not 'base')."
        )
    if name in loaded.adapters:
        raise NameTakenError(
            f"An adapter called {name!r} is already attached to {loaded.name}. Pick another name "
            f"with --as, or free it first with `%lm adapter unload {name}`."
        )
    return name


def _warn_if_made_for_another(loaded: LoadedModel, name: str, base_name: Any) -> None:
    """Warn when the adapter's config names a base model that does not look like ``loaded``."""
    known = {loaded.source.spec, loaded.source.location, loaded.name, loaded.architecture}
    if (
        base_name
        and base_name not in known
        and Path(str(base_name)).name not in {Path(k).name for k in known}
    ):
        warnings.warn(
            f"Adapter {name!r} was made for {base_name!r}; it is attached to {loaded.name} "
            f"({loaded.source.spec}). That is fine for a local copy of the same model.",
            AdapterWarning,
            stacklevel=3,
        )


def _attach(
    loaded: LoadedModel,
    directory: Path,
    config: dict[str, Any],
    weights: Path,
    name: str,
    scale: float,
) -> Any:
    """Add the adapter to ``loaded``'s peft model (made on the first adapter) with its weights
    and scale; on failure nothing stays attached. Returns the peft model."""
    from peft import LoraConfig, PeftModelForCausalLM

    fields = set(LoraConfig.__dataclass_fields__)
    lora_config = LoraConfig(
        **{k: v for k, v in config.items() if k in fields and k != "peft_type"}
    )
    lora_config.inference_mode = True
    peft_model = _peft_model(loaded)
    created = peft_model is None
    try:
        with warnings.catch_warnings():  # transformers deprecation notes raised inside peft
            warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
            if created:
                peft_model = PeftModelForCausalLM(loaded.model, lora_config, adapter_name=name)
            else:
                peft_model.add_adapter(name, lora_config)
        _load_weights(peft_model, weights, name)
        _set_scale(peft_model, name, scale)
        peft_model.eval()
    except Exception as exc:
        if created and peft_model is not None:
            peft_model.unload()
        elif peft_model is not None and name in peft_model.peft_config:
            peft_model.delete_adapter(name)
        raise AdapterError(f"Could not attach {str(directory)!r}: {exc}") from exc
    loaded.extras["peft_model"] = peft_model
    return peft_model


def _load_weights(peft_model: Any, weights: Path, name: str) -> None:
    from peft.utils import set_peft_model_state_dict

    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        import torch

        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    result = set_peft_model_state_dict(peft_model, state, adapter_name=name)
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k and f".{name}." in k]
    if missing:
        raise AdapterError(
            f"the adapter file lacks {len(missing)} LoRA tensors (e.g. {missing[0]})"
        )


def unload_adapter(loaded: LoadedModel, name: str) -> AdapterInfo:
    """Detach adapter ``name`` and free its weights; the last one restores the plain model."""
    import gc

    resolved = resolve_adapter(loaded, name)
    if resolved is None:
        raise AdapterError("The base model is not an adapter; give an adapter's name.")
    peft_model = _peft_model(loaded)
    info = loaded.adapters.pop(resolved)
    if loaded.default_adapter == resolved:
        loaded.default_adapter = None
    if peft_model is not None:
        if loaded.adapters:
            with warnings.catch_warnings():  # peft notes the switch of its "active" adapter,
                warnings.simplefilter("ignore")  # which lmwidgets never relies on
                peft_model.delete_adapter(resolved)
        else:
            loaded.model = peft_model.unload()
            loaded.extras.pop("peft_model", None)
    gc.collect()
    return info
