"""A decoding step's small operations as compiled loops (``lean_ops.c``), five calls a layer.

Between a Llama-family layer's matrix products a decoding step runs ~27 small ATen operations
(two RMSNorms, the rotary step, the cache's attention, SiLU, residuals). Each is microseconds
of work but costs 10-20 us in a step, with the caches just flushed by the products' weights:
about a quarter of a step of the 135M default model. Here they are five plain C loops a layer,
compiled once per machine with the system's C compiler into the cache directory and called
through :mod:`ctypes` (no Python headers, no torch headers: compiling takes about 0.3 s).

The numbers are float32 like ATen's, but sums run in another order, so the last bits of a norm
or a softmax can differ from transformers' (as a packed product's do from PyTorch's own):
:mod:`.kernel_choice` uses them where a decoding step measured faster, and tests hold greedy
tokens equal to transformers'. No compiler, or a failed build: the ATen step runs, and
:func:`unavailable` says why.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("lean_ops.c")
#: -ffp-contract=off: no fused multiply-add, so the rotation rounds as ATen's mul, mul, add do.
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC")
COMPILE_TIMEOUT_S = 120

_P, _L, _F = ctypes.c_void_p, ctypes.c_long, ctypes.c_float
_SIGNATURES = {
    "lmw_rms_norm": [_P, _P, _F, _L, _L, _P],
    "lmw_add_rms_norm": [_P, _P, _P, _F, _L, _L, _P, _P],
    "lmw_rotary": [_P, _L, _L, _L, _L, _P, _P],
    "lmw_attend": [_P, _L, _P, _P, _L, _L, _L, _L, _L, _L, _L, _F, _P, _P],
    "lmw_silu_mul": [_P, _P, _L, _L, _L, _P],
}

_STATE: dict[str, Any] = {}  # "library" (the CDLL or None) and "why" (when None)


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


#: The /proc/cpuinfo lines that tell what -march=native compiles for (x86: model name and
#: flags; Arm: implementer, part and features).
_CPU_LINES = ("model name", "flags", "CPU implementer", "CPU part", "Features")


def _cpu_tag() -> str:
    """What -march=native compiles for: the machine, the CPU's model and its flags."""
    import platform

    lines = [platform.machine(), platform.processor()]
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        seen = set()
        for line in handle:
            key = line.partition(":")[0].strip()
            if key in _CPU_LINES and key not in seen:  # the first core's lines
                seen.add(key)
                lines.append(line.strip())
    return "\n".join(lines)


def _library_path(compiler: str) -> Path:
    from lmwidgets.engines.transformers.cache import cache_dir

    tag = "\n".join([SOURCE.read_text(), compiler, " ".join(FLAGS), _cpu_tag()])
    digest = hashlib.sha256(tag.encode()).hexdigest()[:16]
    return cache_dir() / "lean-ops" / f"lean_ops-{digest}.so"


def _build(compiler: str, target: Path) -> None:
    """Compile into ``target`` atomically (two kernels loading at once each build their own)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so")
    os.close(handle)
    try:
        subprocess.run(
            [compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lm"],
            check=True,
            capture_output=True,
            timeout=COMPILE_TIMEOUT_S,
        )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _load(path: Path) -> ctypes.CDLL:
    library = ctypes.CDLL(str(path))
    for name, argtypes in _SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, None
    return library


def library() -> ctypes.CDLL | None:
    """The compiled loops (built on first use, then from the cache), or None."""
    if "library" in _STATE:
        return _STATE["library"]
    found, why = None, None
    compiler = _compiler()
    if compiler is None:
        why = "no C compiler (cc) on this machine"
    else:
        try:
            path = _library_path(compiler)
            if not path.exists():
                _build(compiler, path)
            try:
                found = _load(path)
            except OSError:  # a damaged file in the cache: build it again, once
                path.unlink(missing_ok=True)
                _build(compiler, path)
                found = _load(path)
        except subprocess.CalledProcessError as error:
            why = f"compiling lean_ops.c failed: {error.stderr.decode(errors='replace')[-300:]}"
        except (OSError, subprocess.SubprocessError, AttributeError) as error:
            why = f"compiled small operations unavailable: {error}"
    _STATE.update(library=found, why=why)
    return found


def unavailable() -> str | None:
    """Why :func:`library` is None (None when it is not)."""
    library()
    return _STATE["why"]


def _ptr(tensor: Any) -> int:
    return tensor.data_ptr()


def _empty(*shape: int) -> Any:
    """A float32 CPU buffer for a loop to fill (whatever torch's default dtype and device)."""
    import torch

    return torch.empty(shape, dtype=torch.float32, device="cpu")


def rms_norm(lib: ctypes.CDLL, x: Any, weight: Any, eps: float) -> Any:
    """RMSNorm of each row of a contiguous float32 ``x`` (last dimension normed)."""
    import torch

    out = torch.empty_like(x)
    n = x.shape[-1]
    lib.lmw_rms_norm(_ptr(x), _ptr(weight), eps, x.numel() // n, n, _ptr(out))
    return out


def add_rms_norm(lib: ctypes.CDLL, x: Any, y: Any, weight: Any, eps: float) -> tuple[Any, Any]:
    """(x + y, its RMSNorm): a residual and the next block's normed input, in one call."""
    import torch

    total, normed = torch.empty_like(x), torch.empty_like(x)
    n = x.shape[-1]
    rows = x.numel() // n
    lib.lmw_add_rms_norm(_ptr(x), _ptr(y), _ptr(weight), eps, rows, n, _ptr(total), _ptr(normed))
    return total, normed


def rotate_(lib: ctypes.CDLL, stacked: Any, heads: int, head_dim: int, cos: Any, sin: Any) -> None:
    """Rotate the first ``heads`` heads of each row of ``stacked`` (rows x width) in place;
    ``cos``/``sin`` (signed, see ``lean_decode._rotary_factors``): one row of ``head_dim``
    per row of ``stacked``, or one for all."""
    rows, width = stacked.shape
    cos, sin = (f.reshape(-1, head_dim).expand(rows, head_dim).contiguous() for f in (cos, sin))
    lib.lmw_rotary(_ptr(stacked), rows, width, heads, head_dim, _ptr(cos), _ptr(sin))


def attend(lib: ctypes.CDLL, stacked: Any, key: Any, value: Any, n_q: int, scaling: float) -> Any:
    """Each row's queries (the first ``n_q`` heads of ``stacked``) against the whole cache
    (``key``/``value``: rows x kv heads x length x head dim, each head's keys contiguous, as
    transformers' cache and a cache growing in place hand them out): rows x (n_q*head)."""
    rows, n_kv, length, head = key.shape
    if stacked.shape[0] != rows or value.shape != key.shape or n_q % n_kv:
        raise ValueError(f"attend: queries {tuple(stacked.shape)}, keys {tuple(key.shape)}")
    key, value = _heads_contiguous(key), _heads_contiguous(value)
    if value.stride() != key.stride():
        key, value = key.contiguous(), value.contiguous()
    scores, out = _empty(length), _empty(rows, n_q * head)
    lib.lmw_attend(
        _ptr(stacked), stacked.shape[1], _ptr(key), _ptr(value), key.stride(0), key.stride(1),
        rows, n_q, n_kv, length, head, scaling, _ptr(scores), _ptr(out),
    )  # fmt: skip
    return out


def _heads_contiguous(tensor: Any) -> Any:
    """``tensor`` (rows x heads x length x dim), copied only if a head's keys are not packed."""
    length, dim = tensor.shape[2:]
    packed = tensor.stride(3) == 1 and (tensor.stride(2) == dim or length == 1)
    return tensor if packed else tensor.contiguous()


def silu_mul(lib: ctypes.CDLL, gate: Any, up: Any) -> Any:
    """silu(gate) * up for rows x width views sharing one row stride (a fused product's
    halves, or two contiguous outputs)."""
    rows, width = gate.shape
    out = _empty(rows, width)
    lib.lmw_silu_mul(_ptr(gate), _ptr(up), rows, gate.stride(0), width, _ptr(out))
    return out
