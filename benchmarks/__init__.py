"""lmwidgets benchmarks: lmwidgets vs the plain transformers way, side by side in one run."""
