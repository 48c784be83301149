"""Figures and small tables for the interpolation-kernel study.

Every function returns data (a DataFrame) or a figure (``plotly.graph_objects.Figure``; the
heatmap is a matplotlib ``Figure``) and never shows it.

Functions
---------
Kernels (``_kernels``)
    :func:`kernel_shapes_figure`, :func:`frequency_response`, :func:`frequency_response_figure`,
    :func:`hardware_table`, :func:`hardware_figure`, :data:`DEFAULT_KERNELS`
Crops (``_crops``)
    :func:`crops_figure`, :func:`kernel_crops_figure`, :func:`compare_crops`,
    :func:`crop_explorer` (the widget)
Quality (``_quality``)
    :func:`quality_figure`, :func:`quality_heatmap`
Multi-frame (``_multiframe``)
    :func:`multiframe_view` (crops of one sequence's fusions), :func:`multiframe_explorer`
    (frames, noise and scale sliders)
Fixed point (``_fpga``)
    :func:`difference_figure` (error maps of :mod:`srlab.fpga` designs against the float
    resize), :func:`pareto_figure` (the word-length Pareto front of
    :func:`srlab.fpga.word_length_sweep`)

The look they share (a row of image panels, titled charts) is ``_layout``'s, private to
this package.
"""

from __future__ import annotations

from srlab.viz._crops import (
    compare_crops,
    crop_explorer,
    crops_figure,
    kernel_crops_figure,
)
from srlab.viz._fpga import difference_figure, pareto_figure
from srlab.viz._kernels import (
    DEFAULT_KERNELS,
    frequency_response,
    frequency_response_figure,
    hardware_figure,
    hardware_table,
    kernel_shapes_figure,
)
from srlab.viz._multiframe import multiframe_explorer, multiframe_view
from srlab.viz._quality import quality_figure, quality_heatmap

__all__ = [
    "DEFAULT_KERNELS",
    "compare_crops",
    "crop_explorer",
    "crops_figure",
    "difference_figure",
    "frequency_response",
    "frequency_response_figure",
    "hardware_figure",
    "hardware_table",
    "kernel_crops_figure",
    "kernel_shapes_figure",
    "multiframe_explorer",
    "multiframe_view",
    "pareto_figure",
    "quality_figure",
    "quality_heatmap",
]
