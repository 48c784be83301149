"""Mechanisms both labs share: a registry of named things, argument checks, atomic writes.

``moelab`` (mixture-of-experts, torch) and ``srlab`` (super-resolution, numpy + OpenCV)
each look things up by name and write result files that must never be seen half-written.
Those mechanisms live here, once, in pure standard-library code, so both labs can use them
while neither depends on the other (srlab must never import torch or moelab).

Modules
-------
registry
    :class:`~labcore.registry.Registry`: register by decorator, look up by name, an
    unknown name raises ``ValueError`` listing the known ones.
checks
    :func:`~labcore.checks.check_type`, :func:`~labcore.checks.check_int`,
    :func:`~labcore.checks.check_name`, :func:`~labcore.checks.check_callable`,
    :func:`~labcore.checks.check_choice` (a name from a fixed set; the registry's lookups use
    it): a wrong type raises ``TypeError``, a bad value ``ValueError``, with one message style.
pareto
    :func:`~labcore.pareto.non_dominated` (plain sequences) and
    :func:`~labcore.pareto.pareto_front` (table rows): the one Pareto-front implementation.
atomic
    :func:`~labcore.atomic.atomic_write_text`, :func:`~labcore.atomic.atomic_write_bytes`
    and :func:`~labcore.atomic.atomic_path`: write next to the target, then ``os.replace``.
"""

from labcore.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from labcore.checks import check_callable, check_choice, check_int, check_name, check_type
from labcore.pareto import non_dominated, pareto_front
from labcore.registry import Registry

__all__ = [
    "Registry",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_callable",
    "check_choice",
    "check_int",
    "check_name",
    "check_type",
    "non_dominated",
    "pareto_front",
]
