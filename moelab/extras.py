"""Optional dependencies, imported where they are used.

The model-merging baselines (mergekit) and the ROUGE metric (rouge-score) are not needed to
load, compare or consolidate models, and mergekit pulls a large stack (accelerate, datasets,
peft, pyarrow), so both live in the ``merging`` extra: ``pip install 'moe-sr-lab[merging]'``.
HQQ and bitsandbytes, quantization backends, live in the ``quant`` extra.
Code that needs one calls :func:`require` at the point of use; without the extra it raises
:class:`~moelab.errors.MissingExtraError`, whose message names the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from moelab.errors import MissingExtraError

__all__ = ["OPTIONAL_MODULES", "require"]

DISTRIBUTION = "moe-sr-lab"

#: Top-level module -> (pip distribution that provides it, extra of moe-sr-lab that installs it).
OPTIONAL_MODULES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "mergekit": ("mergekit", "merging"),
        "rouge_score": ("rouge-score", "merging"),
        "hqq": ("hqq", "quant"),
        "bitsandbytes": ("bitsandbytes", "quant"),
    }
)


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional module, or say which extra installs it.

    Parameters
    ----------
    module : str
        Dotted module name whose top-level package is in :data:`OPTIONAL_MODULES`,
        e.g. ``"mergekit.merge_methods.registry"``.
    purpose : str
        What needs it, for the message, e.g. ``"merge method 'ties'"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        If the module cannot be imported; the message gives the ``pip install`` command of
        the extra, and the original ImportError is chained.
    ValueError
        If the top-level package is not a known optional dependency (a programming error).

    Examples
    --------
    >>> scorer = require("rouge_score.rouge_scorer", "ROUGE-1")
    >>> scorer.__name__
    'rouge_score.rouge_scorer'
    """
    top = module.partition(".")[0]
    if top not in OPTIONAL_MODULES:
        raise ValueError(
            f"{top!r} is not a known optional dependency; known: {', '.join(sorted(OPTIONAL_MODULES))}"
        )
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, extra = OPTIONAL_MODULES[top]
        raise MissingExtraError(
            f"{purpose} needs the optional package {package!r}, which cannot be imported ({exc}); "
            f"install the {extra!r} extra: pip install '{DISTRIBUTION}[{extra}]'",
            name=module,
        ) from exc
