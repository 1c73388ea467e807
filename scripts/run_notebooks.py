"""Execute notebooks headless (nbclient), fail on any error, save them and export HTML.

python scripts/run_notebooks.py examples/quickstart.ipynb --html build/quickstart.html
python scripts/run_notebooks.py examples/*.ipynb --html-dir build

A notebook whose metadata lists environment variables under ``lmwidgets.requires_env`` (e.g.
``examples/served.ipynb`` needs ``LMWIDGETS_SERVER``, a running server's URL) is skipped, with a
note, when one of them is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def missing_env(path: Path) -> list[str]:
    """The environment variables ``path`` needs (``metadata.lmwidgets.requires_env``) that are
    not set here."""
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    needed = metadata.get("lmwidgets", {}).get("requires_env", [])
    return [name for name in needed if not os.environ.get(name)]


def execute(path: Path, out_dir: Path, timeout: int) -> Path:
    """Run every cell of ``path`` in its own directory; save the executed copy in ``out_dir``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    nbformat.write(notebook, executed)
    return executed


def export_html(notebook: Path, target: Path) -> None:
    """Export an executed notebook to static HTML with nbconvert."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--html", type=Path, help="HTML file for a single notebook.")
    parser.add_argument("--html-dir", type=Path, help="Directory for one HTML file per notebook.")
    parser.add_argument("--out-dir", type=Path, default=Path("build/executed"))
    parser.add_argument("--timeout", type=int, default=900, help="Seconds per cell.")
    args = parser.parse_args(argv)
    if args.html and len(args.notebooks) != 1:
        parser.error("--html takes a single notebook; use --html-dir for several")
    failures = 0
    for notebook in args.notebooks:
        missing = missing_env(notebook)
        if missing:
            print(f"skipped {notebook}: set {', '.join(missing)} to run it")
            continue
        started = time.perf_counter()
        try:
            executed = execute(notebook, args.out_dir, args.timeout)
        except Exception as exc:  # report every failing notebook, then fail
            failures += 1
            print(f"FAILED {notebook}: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
            continue
        html = args.html or (args.html_dir / f"{notebook.stem}.html" if args.html_dir else None)
        if html is not None:
            export_html(executed, html)
        print(
            f"ok {notebook} ({time.perf_counter() - started:.0f} s){f' -> {html}' if html else ''}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
