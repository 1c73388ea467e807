"""Which CPU kernels a model's linear layers run with, chosen by timing them on this CPU.

Packed oneDNN weights (:mod:`.cpu_kernels`) beat PyTorch's plain product on some CPUs and batch
sizes and lose on others (an AMD EPYC gains 1.5x at batch 1, an Intel Xeon with AVX-512 loses
35% there). So at load, in the automatic mode, every distinct linear shape of the model is timed
with both kernels at 1 row and at the rows of a typical comparison (4), on the model's own
weights in model order (so they stream from memory as in a decoding step), and a shape runs
packed only where it measured faster at one of them and no slower at the other: never slower
than plain transformers at the batch sizes measured. The decision is cached per CPU model, instruction-set flags,
thread count, torch version and shapes (``cpu-kernels.json`` in the cache dir), so later loads
measure nothing. ``bf16`` (bfloat16 weights, float32 accumulation) is opt-in only: its answers
can differ from float32's.

Then sibling layers that read one input (q/k/v, gate/up: :mod:`.fused_linear`) are timed as
they now run, one after the other, against one packed product of their stacked weights, and a
group kind is fused only where that measured faster at one row count and no slower at any. A
fused group gives the numbers of its layers packed separately, bit for bit; layers the plan
kept on PyTorch's product move to oneDNN's with it, whose last bits can differ, as any packed
layer's can (the benchmarks check greedy answers equal to plain transformers').

Last, where decoder layers took the lean decoding step, one step of the model is timed with
its small operations as ATen's and as compiled loops (:mod:`.small_ops_choice`,
:mod:`.lean_ops`), and the loops are kept where they were faster and agreed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from lmwidgets.engines.transformers import (
    cpu_kernels,
    fused_linear,
    lean_decode,
    lean_ops,
    small_ops_choice,
)
from lmwidgets.errors import DeviceError, InvalidArgumentError

#: What ``%lm load --cpu-kernels`` takes.
KERNELS = ("auto", "packed", "plain", "bf16")
#: Rows timed: one prompt, and the 4 variants of a typical side-by-side comparison.
BATCH_SIZES = (1, 4)
#: Packed must be this much faster to be chosen (ties and noise go to plain transformers).
MARGIN = 0.05
#: Layers timed per shape: enough to stream from memory as a step does (not from the cache).
LAYERS_PER_SHAPE = 6
#: Timed rounds per (kernel, rows) after one warm-up; the best counts.
ROUNDS = 4
#: Seconds after which no new timing round starts.
BUDGET_S = 1.0
#: A measurement whose median round took this many times its best was made on a busy CPU: it
#: is used and cached, and the next load measures again (keeping the quieter measurement), up
#: to :data:`MAX_TRIES` measurements.
NOISE_LIMIT = 1.3
#: The noise of a measurement too short to tell (fewer than :data:`MIN_ROUNDS` rounds): busy.
UNKNOWN_NOISE = 9.99
#: Timed rounds always made (whatever the budget): one round cannot tell its own noise.
MIN_ROUNDS = 2
#: Loads that measure again after busy measurements; then the quietest one is kept for good.
MAX_TRIES = 3
CACHE_FILE = "cpu-kernels.json"
# 2: shapes are never split between kernels; 3: sibling layers fused; 4: small operations
_CACHE_VERSION = 4
#: The instruction-set flags that decide which kernels oneDNN and MKL use.
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")

Timings = dict[str, dict[str, dict[int, float]]]  # shape -> kernel -> rows -> seconds
Plan = dict[str, tuple[bool, bool]]  # shape -> (packed at 1 row, packed at more rows)
Fusion = dict[str, bool]  # sibling group kind (FusedGroup.key) -> run as one packed product


def check_kernels(value: Any) -> str:
    """``value`` as one of :data:`KERNELS` (None is ``auto``), else an InvalidArgumentError."""
    if value is None:
        return "auto"
    if not isinstance(value, str) or value.strip().lower() not in KERNELS:
        shown = value if isinstance(value, str) else type(value).__name__
        raise InvalidArgumentError(
            f"--cpu-kernels must be one of {', '.join(KERNELS)}, not {shown!r}."
        )
    return value.strip().lower()


def cpu_description() -> dict[str, Any]:
    """This CPU as the cache keys and benchmark tables name it: model, flags that matter,
    PyTorch's thread count and vector capability."""
    import platform

    import torch

    name, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return {
        "model": name,
        "flags": [flag for flag in FLAGS if flag in flags],
        "threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


@dataclass
class KernelChoice:
    """What the linear layers run with, and why."""

    kernel: str  # packed, plain, mixed (packed for some shapes or batch sizes) or bf16
    how: str  # measured, cached, asked, memory (too little memory to pack), unsupported
    plan: Plan = field(default_factory=dict)
    timings_us: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0  # spent choosing (timing included)
    cpu: dict[str, Any] = field(default_factory=dict)
    noise: float | None = None  # measured: the median timing round over the best one
    fusion: Fusion = field(default_factory=dict)
    fusion_timings_us: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    lean_layers: int = 0  # decoder layers given the lean decoding step
    small_ops: str = "aten"  # the lean step's small operations: aten or compiled (measured)
    small_ops_timings: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """Short, for the load summary: ``packed, fused (measured)``, ``plain (cached)``..."""
        precision = ", lower precision" if self.kernel == "bf16" else ""
        fused = ", fused" if any(self.fusion.values()) else ""
        compiled = ", compiled small ops" if self.small_ops == "compiled" else ""
        return f"{self.kernel}{precision}{fused}{compiled} ({self.how})"

    def record(self) -> dict[str, Any]:
        """What run records and benchmark tables say about it."""
        return {
            "kernel": self.kernel,
            "how": self.how,
            "lower_precision": self.kernel == "bf16",
            "plan": {shape: {"1 row": a, "more rows": b} for shape, (a, b) in self.plan.items()},
            "timings_us": self.timings_us,
            "fused": dict(self.fusion),
            "lean_decode_layers": self.lean_layers,
            "small_ops": self.small_ops,
            "small_ops_timings": self.small_ops_timings,
            "fusion_timings_us": self.fusion_timings_us,
            "choosing_s": self.seconds,
            "noise": self.noise,
            "cpu": self.cpu,
        }


def decide(timings: Timings, margin: float = MARGIN) -> Plan:
    """Per shape: packed (at every row count) where it measured ``margin`` faster at some row
    count timed and no slower at any, else plain.

    A shape is never split (plain for one row, packed for more): that would keep both copies of
    its weights in memory, and lmwidgets holds one (the packing's dense pages are given back).
    """
    plan: Plan = {}
    for shape, kernels in timings.items():
        plan[shape] = (_wins(kernels["plain"], kernels["packed"], margin),) * 2
    return plan


def decide_fusion(timings: Timings, margin: float = MARGIN) -> Fusion:
    """Per sibling group kind: fused where one product measured ``margin`` faster than the
    separate layers at some row count timed and no slower at any."""
    return {key: _wins(kinds["separate"], kinds["fused"], margin) for key, kinds in timings.items()}


def _wins(base: dict[int, float], candidate: dict[int, float], margin: float) -> bool:
    faster = any(candidate[rows] < (1 - margin) * base[rows] for rows in base)
    return faster and all(candidate[rows] <= base[rows] for rows in base)


def plan_kernel(plan: Plan) -> str:
    """``packed``, ``plain`` or ``mixed`` for a plan."""
    flags = {flag for pair in plan.values() for flag in pair}
    if flags == {True}:
        return "packed"
    return "mixed" if True in flags else "plain"


def measure(
    model: Any,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    rounds: int = ROUNDS,
    budget: float = BUDGET_S,
) -> tuple[Timings, float]:
    """(seconds per shape for each kernel and row count, noise): the best time of each timed
    layer over ``rounds`` (at least :data:`MIN_ROUNDS`, more while within ``budget``), summed
    per shape; noise (:func:`_noise`) is 1.0 on a quiet machine.

    Every float32 linear layer must be packed already (both kernels are called directly).
    Each layer is called with both kernels back to back (which goes first alternates by round),
    and each call is timed alone, so another process's burst spoils a few calls of both
    kernels, not a whole pass of one.
    """
    import torch

    chosen: dict[str, list[Any]] = {}
    for module in model.modules():
        if hasattr(module, "_lmw_packed"):
            layers = chosen.setdefault(cpu_kernels.shape_key(module), [])
            if len(layers) < LAYERS_PER_SHAPE:
                layers.append(module)
    timed = {id(m) for layers in chosen.values() for m in layers}
    order = [m for m in model.modules() if id(m) in timed]
    inputs = {
        (key, rows): torch.randn(rows, layers[0].in_features)
        for key, layers in chosen.items()
        for rows in batch_sizes
    }
    linear, pointwise = torch.nn.functional.linear, torch.ops.mkldnn._linear_pointwise

    def call(module: Any, kernel: str, rows: int) -> float:
        x = inputs[cpu_kernels.shape_key(module), rows]
        started = time.perf_counter()
        if kernel == "plain":
            linear(x, module.weight, module.bias)
        else:
            pointwise(x, module._lmw_packed, module.bias, "none", [], "")
        return time.perf_counter() - started

    kernels = ("plain", "packed")
    calls = _timed_rounds(order, batch_sizes, kernels, call, rounds, budget)
    return _summed(calls, [cpu_kernels.shape_key(m) for m in order], kernels), _noise(calls)


def measure_fusion(
    model: Any,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    rounds: int = ROUNDS,
    budget: float = BUDGET_S,
) -> Timings:
    """Seconds per sibling group kind (:mod:`.fused_linear`), for each row count: its layers
    called one after the other as they run now (``separate``) and one product of their
    stacked weights (``fused``); best of ``rounds`` per group, summed per kind, alternating
    which goes first, as :func:`measure` does."""
    import torch

    chosen: dict[str, list[fused_linear.FusedGroup]] = {}
    for group in fused_linear.find_groups(model):
        groups = chosen.setdefault(group.key, [])
        if len(groups) < LAYERS_PER_SHAPE:
            group.pack()  # a trial copy, dropped with the group
            groups.append(group)
    order = [group for groups in chosen.values() for group in groups]
    inputs = {
        (key, rows): torch.randn(rows, groups[0].members[0].in_features)
        for key, groups in chosen.items()
        for rows in batch_sizes
    }

    def call(group: fused_linear.FusedGroup, kind: str, rows: int) -> float:
        return _time_group(group, inputs[group.key, rows], kind)

    kinds = ("separate", "fused")
    calls = _timed_rounds(order, batch_sizes, kinds, call, rounds, budget)
    return _summed(calls, [group.key for group in order], kinds)


def _timed_rounds(
    items: list[Any],
    batch_sizes: tuple[int, ...],
    kinds: tuple[str, str],
    call: Any,
    rounds: int,
    budget: float,
) -> dict[tuple[int, str, int], list[float]]:
    """Seconds of every ``call(item, kind, rows)``, keyed (item's index, kind, rows): each
    item with both ``kinds`` back to back (which goes first alternates by round, and a burst
    of another process's work then slows both alike); the first round warms up (and maps the
    pages in), at least :data:`MIN_ROUNDS` are timed, more while within ``budget`` seconds."""
    import torch

    calls: dict[tuple[int, str, int], list[float]] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for round_ in range(rounds + 1):
            if round_ > MIN_ROUNDS and time.perf_counter() - started > budget:
                break  # a busy or slow machine: fewer rounds
            order = kinds if round_ % 2 else kinds[::-1]
            for rows in batch_sizes:
                for index, item in enumerate(items):
                    for kind in order:
                        seconds = call(item, kind, rows)
                        if round_:
                            calls.setdefault((index, kind, rows), []).append(seconds)
    return calls


def _summed(
    calls: dict[tuple[int, str, int], list[float]], keys: list[str], kinds: tuple[str, str]
) -> Timings:
    """Each timed call's best, summed per key (``keys[index]``: a shape, a group kind)."""
    best: Timings = {key: {kind: {} for kind in kinds} for key in keys}
    for (index, kind, rows), times in calls.items():
        per_rows = best[keys[index]][kind]
        per_rows[rows] = per_rows.get(rows, 0.0) + min(times)
    return best


def _time_group(group: fused_linear.FusedGroup, x: Any, kind: str) -> float:
    started = time.perf_counter()
    if kind == "fused":
        group.product(x)
    else:
        for module in group.members:
            module(x)
    return time.perf_counter() - started


def apply_fusion(model: Any, fusion: Fusion, bf16: bool = False) -> int:
    """Fuse every sibling group whose kind ``fusion`` says to, and give the decoder layers
    whose attention and MLP are then fused the lean decoding step (:mod:`.lean_decode`: the
    same arithmetic, fewer operations); returns how many groups were fused."""
    count = 0
    for group in fused_linear.find_groups(model, bf16=bf16):
        if fusion.get(group.key):
            fused_linear.fuse(group)
            count += 1
    if count:
        lean_decode.install(model)
    return count


def _noise(calls: dict[Any, list[float]]) -> float:
    """The median round's total over the sum of every call's best; a measurement of fewer
    than :data:`MIN_ROUNDS` rounds cannot tell its noise and counts as busy (a single round
    on a machine whose other core was busy once read as perfectly quiet, and its timings,
    100x too slow, were cached for good)."""
    import statistics

    done = min((len(times) for times in calls.values()), default=0)
    if done < MIN_ROUNDS:
        return UNKNOWN_NOISE
    totals = [sum(times[r] for times in calls.values()) for r in range(done)]
    return statistics.median(totals) / max(1e-12, sum(min(t) for t in calls.values()))


def _shapes(model: Any) -> dict[str, int]:
    """How many float32 CPU linear layers the model has of each shape."""
    import torch

    counts: dict[str, int] = {}
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.dtype == torch.float32:
            key = cpu_kernels.shape_key(module)
            counts[key] = counts.get(key, 0) + 1
    return counts


def cache_key(model: Any, cpu: dict[str, Any], batch_sizes: tuple[int, ...]) -> str:
    """What a cached decision depends on: the CPU, threads, torch and the model's shapes."""
    described = {"cpu": cpu, "shapes": _shapes(model), "rows": list(batch_sizes)}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _cache_path():
    from lmwidgets.engines.transformers.cache import cache_dir

    return cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(data, dict) and data.get("version") == _CACHE_VERSION
    return data.get("entries", {}) if ok and isinstance(data.get("entries"), dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    """Add ``entry`` under ``key``, atomically (a failed write only means measuring again)."""
    entries = _read_cache()
    entries[key] = entry
    path = _cache_path()
    with contextlib.suppress(OSError):
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cpu-kernels-")
        with os.fdopen(handle, "w") as out:
            json.dump({"version": _CACHE_VERSION, "entries": entries}, out, indent=1)
        os.replace(tmp, path)


def _cached_plan(entry: Any) -> tuple[Plan, dict] | None:
    try:
        plan = {str(k): (bool(v[0]), bool(v[1])) for k, v in entry["plan"].items()}
        return plan, dict(entry.get("timings_us", {}))
    except (KeyError, TypeError, IndexError, AttributeError):
        return None


def _in_us(timings: Timings) -> dict[str, dict[str, dict[str, float]]]:
    return {
        shape: {k: {str(r): round(s * 1e6, 1) for r, s in rows.items()} for k, rows in ks.items()}
        for shape, ks in timings.items()
    }


def choose_kernels(
    model: Any,
    mode: str = "auto",
    *,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    timings: Timings | None = None,
    fusion_timings: Timings | None = None,
) -> KernelChoice:
    """Set up ``model``'s float32 CPU linear layers for ``mode`` and say what was chosen.

    ``auto`` uses the cached decision for this CPU and model shapes, else measures (or takes
    ``timings``, seconds per shape, kernel and rows, and ``fusion_timings``, per sibling group
    kind, e.g. from a test) and caches what it decides. ``packed``/``plain``/``bf16`` are what
    the user asked for (packed and bf16 fuse every sibling group: the packed numbers, fewer calls);
    ``bf16`` needs a CPU with native bfloat16 products."""
    started = time.perf_counter()
    mode = check_kernels(mode)
    cpu = cpu_description()
    cpu_kernels.unpack_linear_layers(model)
    everything = {shape: (True, True) for shape in _shapes(model)}
    if mode == "plain" or (mode == "auto" and not cpu_kernels.supported()):
        return KernelChoice("plain", "asked" if mode == "plain" else "unsupported", cpu=cpu)
    if mode in ("packed", "bf16"):
        check_supported(mode)
        bf16 = mode == "bf16"
        cpu_kernels.prepack_linear_layers(model, bf16=bf16)
        fusion = {group.key: True for group in fused_linear.find_groups(model)}
        apply_fusion(model, fusion, bf16=bf16)
        choice = KernelChoice(mode, "asked", everything, seconds=_since(started), cpu=cpu)
        choice.fusion, choice.lean_layers = fusion, lean_decode.lean_layers(model)
        return choice
    if not cpu_kernels.worth_packing(model):
        return KernelChoice("plain", "memory", cpu=cpu)
    key = cache_key(model, cpu, batch_sizes)
    entry = _read_cache().get(key) if timings is None else None
    cached = _cached_plan(entry)
    tries = _tries_of(entry)
    if cached is not None and (_noise_of(entry) <= NOISE_LIMIT or tries >= MAX_TRIES):
        entry, timed_before = dict(entry), "small_ops" in entry
        choice = _from_cache(model, entry, cached, started, cpu)
        if "small_ops" in entry and not timed_before:
            _write_cache(key, entry)  # timed now (no compiler at the earlier loads)
        return choice
    earlier = entry
    entry = _measured_entry(model, batch_sizes, timings, fusion_timings, cpu)
    if cached is not None and _noise_of(earlier) <= _noise_of(entry):
        entry = dict(earlier)  # the earlier measurement was quieter
    entry["tries"] = tries + 1
    plan, in_us = _cached_plan(entry) or ({}, {})
    cpu_kernels.apply_plan(model, plan)  # the model is packed already (measured)
    noise = _noise_of(entry)
    how = "measured" if noise <= NOISE_LIMIT else "measured on a busy CPU"
    choice = _chosen(model, entry, (plan, in_us), how, round(noise, 2), started, cpu)
    _write_cache(key, entry)  # with the small operations' timing _chosen added
    return choice


def _measured_entry(
    model: Any,
    batch_sizes: tuple[int, ...],
    timings: Timings | None,
    fusion_timings: Timings | None,
    cpu: dict[str, Any],
) -> dict[str, Any]:
    """Measure (or take) the timings of both choices and decide; the model is left packed
    per the plan, unfused."""
    cpu_kernels.prepack_linear_layers(model)
    noise = 1.0
    if timings is None:
        timings, noise = measure(model, batch_sizes)
    plan = {**{shape: (False, False) for shape in _shapes(model)}, **decide(timings)}
    cpu_kernels.apply_plan(model, plan)  # the separate layers are timed as they would run
    if fusion_timings is None:
        fusion_timings = measure_fusion(model, batch_sizes)
    return {
        "plan": plan,
        "timings_us": _in_us(timings),
        "fusion": decide_fusion(fusion_timings),
        "fusion_timings_us": _in_us(fusion_timings),
        "cpu": cpu,
        "noise": noise,
    }


def _from_cache(
    model: Any, entry: dict[str, Any], cached: tuple[Plan, dict], started: float, cpu: dict
) -> KernelChoice:
    cpu_kernels.prepack_linear_layers(model, plan=cached[0])
    return _chosen(model, entry, cached, "cached", _noise_of(entry), started, cpu)


def _chosen(
    model: Any,
    entry: dict[str, Any],
    planned: tuple[Plan, dict],
    how: str,
    noise: float,
    started: float,
    cpu: dict,
) -> KernelChoice:
    """Fuse the groups ``entry`` says to (the model packed per its plan already), compile the
    lean step's small operations where ``entry`` says (timing them first where it has no word
    on them yet, added to ``entry``), and say so."""
    plan, in_us = planned
    fusion = _fusion_of(entry)
    apply_fusion(model, fusion)
    small_ops, timings = _small_ops(model, entry)
    choice = KernelChoice(plan_kernel(plan), how, plan, in_us, _since(started), cpu)
    choice.noise = noise
    choice.fusion, choice.fusion_timings_us = fusion, dict(entry.get("fusion_timings_us", {}))
    choice.lean_layers = lean_decode.lean_layers(model)
    choice.small_ops, choice.small_ops_timings = small_ops, timings
    return choice


def _small_ops(model: Any, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("compiled" or "aten", the timing behind it): :mod:`.small_ops_choice` decides, once per
    machine and model (kept in ``entry``); the loops are compiled on first use."""
    if not lean_decode.lean_layers(model):
        return "aten", {}
    library = lean_ops.library()
    if library is None:  # not kept: a later load with a compiler measures
        return "aten", {"error": lean_ops.unavailable()}
    measured = entry.get("small_ops")
    if not isinstance(measured, dict):
        measured = entry["small_ops"] = small_ops_choice.measure(model, library)
    timings = dict(measured)
    if not small_ops_choice.decide(measured):
        return "aten", timings
    lean_decode.use_ops(model, library)
    return "compiled", timings


def _fusion_of(entry: Any) -> Fusion:
    try:
        return {str(k): bool(v) for k, v in entry.get("fusion", {}).items()}
    except (AttributeError, TypeError):
        return {}


def _tries_of(entry: Any) -> int:
    try:
        return int(entry.get("tries", 1))
    except (AttributeError, TypeError, ValueError):
        return 0


def _noise_of(entry: Any) -> float:
    try:
        return float(entry.get("noise", 1.0))
    except (AttributeError, TypeError, ValueError):
        return 1.0


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def check_supported(mode: str) -> None:
    """A DeviceError when this PyTorch or CPU cannot run kernel ``mode``."""
    if not cpu_kernels.supported():
        raise DeviceError(
            f"--cpu-kernels {mode}: this PyTorch build has no oneDNN packed linear layers. "
            "Use --cpu-kernels plain or auto."
        )
    if mode == "bf16" and not cpu_kernels.bf16_supported():
        raise DeviceError(
            "--cpu-kernels bf16 needs a CPU with native bfloat16 products (AVX-512 BF16 or "
            "AMX); this one has none, where bfloat16 would be slower than float32. Use auto."
        )
