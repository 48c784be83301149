"""Execute notebooks headless and write one self-contained HTML report per notebook.

Usage: ``python scripts/tour.py notebooks/01_*.ipynb ...`` (``make tour`` passes them all).
The notebooks run with ``notebooks/`` as working directory, exactly as in JupyterLab; the
executed copies are not written back, so the committed notebooks stay as reviewed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def execute_to_html(notebook: Path, reports: Path, timeout: int) -> Path:
    """Execute ``notebook`` and write ``reports/<stem>.html``; return the report path."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    )
    # Widgets are live only in JupyterLab; a static report shows the figures the notebook
    # draws around them. Not routing widget comms through nbclient's output-widget capture
    # avoids its headless stalls on ``interactive_output`` (jupyter/nbclient#312).
    client.comm_open_handlers = {}
    client.execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    reports.mkdir(parents=True, exist_ok=True)
    target = reports / f"{notebook.stem}.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--reports", type=Path, default=REPORTS)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    written = []
    for notebook in args.notebooks:
        start = time.perf_counter()
        print(f"executing {notebook} ...", flush=True)
        written.append(execute_to_html(notebook.resolve(), args.reports, args.timeout))
        print(f"  done in {time.perf_counter() - start:.0f} s -> {written[-1].name}", flush=True)
    print(f"\n{len(written)} reports written to {args.reports}/:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
