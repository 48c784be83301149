"""One self-contained HTML report per executed notebook, readable offline.

The notebooks store each plotly figure once, as ``application/vnd.plotly.v1+json`` (the
``plotly_mimetype`` renderer, which JupyterLab draws natively). The report turns each of
those outputs into a ``<div>`` drawn by ``Plotly.newPlot`` and embeds plotly.js once, from
the installed ``plotly`` package, so a report fetches nothing from the network: no CDN
plotly.js, require.js, MathJax, mermaid or widget manager. The report therefore does not
depend on which renderer ran the notebook, and it can be written from a committed notebook
without executing it.

Widgets are live only in JupyterLab with a running kernel: the report drops progress bars
and shows one short note per cell in place of interactive controls.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jinja2
import nbformat
import plotly.io as pio
from nbconvert import HTMLExporter
from plotly.offline import get_plotlyjs

from labcore.atomic import atomic_write_text

__all__ = ["PLOTLY_MIMETYPE", "notebook_report", "plotly_outputs", "write_report"]

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    '<p class="report-widget-note"><em>Interactive controls (ipywidgets): they run in '
    "JupyterLab with a live kernel; this report shows the figures drawn around them.</em></p>"
)
# tqdm's text form of a progress bar, e.g. "expert similarity:  40%|####      | 4/10".
_PROGRESS_BAR = re.compile(r"\d+%\|")
# Marker of the output with which plotly's "notebook" renderers load plotly.js through
# require.js; the report embeds plotly.js itself, so such an output is dropped.
_PLOTLYJS_LOADER = "window.PlotlyConfig"

_TEMPLATE = "report.html.j2"
_TEMPLATE_SOURCE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}
{%- if resources.plotly_js %}
<script type="text/javascript">{{ resources.plotly_js }}</script>
{%- endif %}
{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


class _ReportExporter(HTMLExporter):
    """JupyterLab-styled HTML whose only script is plotly.js, inlined when figures exist."""

    extra_loaders = [jinja2.DictLoader({_TEMPLATE: _TEMPLATE_SOURCE})]
    template_file = _TEMPLATE


def plotly_outputs(nb: nbformat.NotebookNode) -> list[dict]:
    """Return the plotly figures stored in the cell outputs of ``nb``, in order.

    Parameters
    ----------
    nb : NotebookNode
        A notebook, as read by ``nbformat.read(path, as_version=4)``.

    Returns
    -------
    list of dict
        One ``application/vnd.plotly.v1+json`` payload (``data``, ``layout``, optional
        ``config``) per figure output; figures inside widget state are not counted.
    """
    return [
        output["data"][PLOTLY_MIMETYPE]
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if PLOTLY_MIMETYPE in output.get("data", {})
    ]


def _figure_html(figure: dict, div_id: str) -> str:
    # The same markup as plotly's "notebook" renderer, without the require.js wrapper.
    return pio.to_html(
        figure,
        config=figure.get("config"),
        include_plotlyjs=False,
        full_html=False,
        default_height=525,
        validate=False,
        div_id=div_id,
    )


def _report_outputs(outputs: list, first_figure: int) -> tuple[list, int]:
    """Rewrite one cell's outputs for the report; return them and the number of figures."""
    kept, figures, noted = [], 0, False
    for output in outputs:
        data = output.get("data", {})
        if PLOTLY_MIMETYPE in data:
            # Replaces the whole bundle: an HTML twin from another renderer goes with it.
            html = _figure_html(data[PLOTLY_MIMETYPE], f"figure-{first_figure + figures}")
            output["data"] = nbformat.from_dict({"text/html": html})
            figures += 1
        elif WIDGET_MIMETYPE in data:
            if noted or _PROGRESS_BAR.search(str(data.get("text/plain", ""))):
                continue
            output["data"] = nbformat.from_dict({"text/html": WIDGET_NOTE})
            noted = True
        elif _PLOTLYJS_LOADER in str(data.get("text/html", "")) and PLOTLY_MIMETYPE not in data:
            continue
        kept.append(output)
    return kept, figures


def notebook_report(nb: nbformat.NotebookNode, title: str) -> str:
    """Render an executed notebook as a self-contained HTML page.

    Parameters
    ----------
    nb : NotebookNode
        An executed notebook; it is not modified.
    title : str
        The page title, e.g. the notebook's file stem.

    Returns
    -------
    str
        HTML in JupyterLab's look. Each plotly output becomes a drawn, interactive figure;
        plotly.js is embedded once when there is at least one figure. Nothing is loaded
        from the network.

    Raises
    ------
    TypeError
        If ``nb`` is not a notebook node (read it with ``nbformat.read(path, as_version=4)``).
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(
            f"nb must be a notebook read with nbformat.read(path, as_version=4), got {type(nb).__name__}"
        )
    nb = copy.deepcopy(nb)
    # Widget state would make nbconvert load the widget manager from a CDN.
    nb.metadata.pop("widgets", None)
    figures = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, count = _report_outputs(cell.outputs, figures)
            figures += count
    resources = {"metadata": {"name": title}, "plotly_js": get_plotlyjs() if figures else ""}
    body, _ = _ReportExporter().from_notebook_node(nb, resources=resources)
    return body


def write_report(nb: nbformat.NotebookNode, target: Path) -> Path:
    """Write :func:`notebook_report` of ``nb`` to ``target`` atomically; return ``target``.

    The page title is the file stem of ``target``; missing parent folders are created.
    """
    target = Path(target)
    body = notebook_report(nb, target.stem)
    return atomic_write_text(target, body)
