"""The committed notebooks are checked against a zoo other than the one that executed them.

CI builds the zoo cold with the thread count set in ``.ci/run``; ``make notebooks`` executes
the committed notebooks on a zoo built with another thread count, a different build (the
thread count changes the float reduction order, hence the trained weights). A notebook
re-executed on the CI's kind of build would let nbval compare a build with itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO_NOTEBOOKS = [
    "01_expert_similarity.ipynb",
    "02_consolidation_and_reconfiguration.ipynb",
    "03_multi_tenant_serving.ipynb",
]
RECORD = re.compile(r"zoo (\S+), trained with (\d+) thread\(s\) per job")


def recorded_threads(notebook: Path) -> set[int]:
    """Thread counts of the zoo builds a notebook's saved outputs say they come from."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    text = "".join(
        "".join(out.get("text", ""))
        for cell in cells if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    )  # fmt: skip
    return {int(threads) for _, threads in RECORD.findall(text)}


def ci_threads() -> int:
    match = re.search(r"MOELAB_TRAIN_THREADS=(\d+)", (ROOT / ".ci" / "run").read_text())
    assert match, ".ci/run must set MOELAB_TRAIN_THREADS for its cold zoo build"
    return int(match.group(1))


def makefile_threads() -> int:
    match = re.search(r"^NOTEBOOK_TRAIN_THREADS := (\d+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile must set NOTEBOOK_TRAIN_THREADS for `make notebooks`"
    return int(match.group(1))


@pytest.mark.parametrize("name", ZOO_NOTEBOOKS)
def test_notebooks_were_executed_on_another_build_than_ci(name: str) -> None:
    threads = recorded_threads(ROOT / "notebooks" / name)
    assert threads, f"{name} does not record which zoo build executed it; run `make notebooks`"
    assert threads == {makefile_threads()}, (
        f"{name} was executed on a zoo trained with {sorted(threads)} thread(s); "
        "re-execute the notebooks with `make notebooks`"
    )
    assert makefile_threads() != ci_threads()


def test_record_parser_reads_a_saved_output(tmp_path: Path) -> None:
    notebook = tmp_path / "n.ipynb"
    output = {
        "output_type": "stream",
        "name": "stdout",
        "text": ["5 models\n", "zoo mixtral-tiny-v2-abc, trained with 3 thread(s) per job\n"],
    }
    cells = [{"cell_type": "code", "source": [], "outputs": [output]}]
    notebook.write_text(json.dumps({"cells": cells}))
    assert recorded_threads(notebook) == {3}
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [], "outputs": []}]}))
    assert recorded_threads(notebook) == set()
