"""nbval settings: compare text results, not rich renderings that differ run to run."""

from __future__ import annotations

# Figures (plotly JSON, matplotlib images), widgets and stderr (progress bars) are rendered
# differently on every run, and a table's text/html is the twin of its text/plain. The text of
# the cells marked NBVAL_CHECK_OUTPUT is the regression check: claims asserted in the cell, and
# tables computed from fixed inputs (shapes, byte counts, fixed-point bit patterns).
SKIPPED_OUTPUTS = (
    "text/html",
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/svg+xml",
    "stderr",
)


def pytest_collectstart(collector):  # noqa: D103 - pytest hook
    if getattr(collector, "fspath", None) is not None and collector.fspath.ext == ".ipynb":
        collector.skip_compare += SKIPPED_OUTPUTS
