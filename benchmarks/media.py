"""The media-dataset benchmark: peak memory of a 200-item image dataset vs a 20-item one.

Each run happens in a fresh process (its peak RSS is reset just before the run, Linux
``/proc/self/clear_refs``), on the tiny LLaVA, with a VQA-style dataset whose ``image`` column holds
paths of 768x768 PNG files (1.7 MB each once decoded). lmwidgets reads the images lazily, one
batch at a time, and releases them after their batch, so the 200-item run should peak at about
what the 20-item run does (target < 1.5x); decoding every item up front would take 10x. The
first 20 items' texts must be the same in both runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Side of the dataset's images in pixels (RGB: 1.7 MB each decoded).
IMAGE_SIDE = 768

_RUN = """
import json, sys
import lmwidgets

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

model_dir, image_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lmwidgets.load_model(model_dir, name="bench-vlm")
dataset = [
    {"input": f"What is in picture {i}?", "image": f"{image_dir}/{i}.png", "expected": "a"}
    for i in range(n)
]
lmwidgets.prompt("Warm up", max_new_tokens=2, display=False, cache=False)
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
comparison = lmwidgets.prompt(
    "{input}", dataset=dataset, max_new_tokens=2, display=False, cache=False, batch_size=8
)
peak = status("VmHWM:") - before
texts = [r.text for r in comparison.results]
print(json.dumps({"peak": peak, "texts": texts[:20], "n": len(texts), "errors": sum(
    r.finish_reason == "error" for r in comparison.results)}))
"""


def _images(directory: Path, count: int) -> None:
    """``count`` distinct 768x768 gradient PNGs (small files, full size once decoded)."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, IMAGE_SIDE, dtype=np.float32)
    for index in range(count):
        red = np.broadcast_to(ramp[None, :], (IMAGE_SIDE, IMAGE_SIDE))
        green = np.broadcast_to(ramp[:, None], (IMAGE_SIDE, IMAGE_SIDE))
        blue = np.full((IMAGE_SIDE, IMAGE_SIDE), (index * 37) % 256, dtype=np.float32)
        pixels = np.stack([red, green, blue], axis=2).astype(np.uint8)
        Image.fromarray(pixels).save(directory / f"{index}.png", optimize=False, compress_level=1)


def _run(model_dir: Path, image_dir: Path, count: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _RUN, str(model_dir), str(image_dir), str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_media_dataset(measurement: Any, small: int = 20, large: int = 200) -> Any:
    """Peak RSS growth of a ``large``-item image dataset run vs a ``small``-item one."""
    from lmwidgets.engines.transformers.demo_models import build_tiny_llava

    work = Path(tempfile.mkdtemp(prefix="lmw-media-bench-"))
    model_dir = build_tiny_llava(work / "tiny-llava")
    image_dir = work / "images"
    image_dir.mkdir()
    _images(image_dir, large)
    few, many = _run(model_dir, image_dir, small), _run(model_dir, image_dir, large)
    base, lmw = few["peak"] / 2**20, many["peak"] / 2**20
    ratio = lmw / base if base > 0 else float("inf")
    same = few["texts"] == many["texts"] and many["n"] == large and many["errors"] == 0
    return measurement(
        f"media dataset: peak memory of {large} images vs {small} (lazy decoding)",
        round(base, 1),
        round(lmw, 1),
        "MB",
        round(ratio, 3),
        "< 1.5x",
        ratio < 1.5,
        same,
        {
            "items": [small, large],
            "image_side": IMAGE_SIDE,
            "decoded_mb_per_image": round(IMAGE_SIDE * IMAGE_SIDE * 3 / 2**20, 2),
        },
    )
