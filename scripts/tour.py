"""Execute notebooks headless and write one self-contained HTML report per notebook.

Usage: ``python scripts/tour.py notebooks/01_*.ipynb ...`` (``make tour`` passes them all);
``--no-execute`` writes the reports from the outputs stored in the notebooks instead.
The notebooks run with ``notebooks/`` as working directory, exactly as in JupyterLab; the
executed copies are not written back, so the committed notebooks stay as reviewed.
The reports are rendered by ``_report.py`` next to this script: plotly.js is embedded,
so they open offline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from _report import write_report
from nbclient import NotebookClient

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def kernel_environment() -> dict[str, str]:
    """Environment of the kernel that executes a notebook for its report.

    Figures are stored as plotly JSON only (the report draws them), whatever
    ``PLOTLY_RENDERER`` the caller set; ``MPLBACKEND`` is left to ipykernel, whose inline
    backend gives a matplotlib figure returned by a cell its PNG (under ``Agg`` the report
    would show ``<Figure size ...>`` instead).
    """
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    env["PLOTLY_RENDERER"] = "plotly_mimetype"
    return env


def execute_notebook(notebook: Path, timeout: int) -> nbformat.NotebookNode:
    """Execute ``notebook`` in its own folder and return the executed copy."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    # Widgets are live only in JupyterLab; a static report shows the figures the notebook
    # draws around them. Not routing widget comms through nbclient's output-widget capture
    # avoids its headless stalls on ``interactive_output`` (jupyter/nbclient#312).
    client.comm_open_handlers = {}
    client.execute(env=kernel_environment())
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--reports", type=Path, default=REPORTS)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="render the stored outputs instead of executing (seconds)",
    )
    args = parser.parse_args(argv)
    written = []
    for notebook in args.notebooks:
        start = time.perf_counter()
        notebook = notebook.resolve()
        if args.no_execute:
            nb = nbformat.read(notebook, as_version=4)
        else:
            print(f"executing {notebook} ...", flush=True)
            nb = execute_notebook(notebook, args.timeout)
        written.append(write_report(nb, args.reports / f"{notebook.stem}.html"))
        print(f"  done in {time.perf_counter() - start:.0f} s -> {written[-1].name}", flush=True)
    print(f"\n{len(written)} reports written to {args.reports}/:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
