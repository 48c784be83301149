"""A consolidated multi-tenant MoE model and its runtime partial reconfiguration.

:class:`ConsolidatedMoE` holds, for N tenants planned by :func:`moelab.consolidation.plan_consolidation`:

* **one expert pool**: a shared slot is stored once, a private slot once per tenant;
* **one non-expert set per tenant**: embeddings, attention, norms, lm_head and the router (and
  Switch's dense MLPs), everything that is not an expert;
* **one live model**: a transformers model whose parameters are bound to one tenant at a time.

:meth:`ConsolidatedMoE.activate` is the serving paper's runtime partial reconfiguration: the live
model takes that tenant's non-expert set and expert mapping. Two modes:

``"swap"``
    every tenant's non-expert set is resident on the device; activation re-points the live
    model's parameters to the tenant's tensors (a dictionary assignment per parameter, no copy).
``"copy"``
    one live non-expert set is resident; every tenant's set is staged in host memory (pinned
    when CUDA is available) and copied into the live tensors on activation, as in the paper.
    Both sides are flat buffers (one per dtype; the live parameters are views into them), so a
    whole set moves with one copy per dtype.

How the live model reads a per-tenant expert mapping, without copying experts:

* Families that keep **one parameter per expert** (Switch Transformers): activation re-points
  each expert parameter of the live model to the tenant's pool entry, like the non-expert set.
* Families that keep the experts of a layer **fused** in one ``[E, ...]`` parameter (Mixtral,
  OLMoE): a fused tensor cannot be a view of scattered pool rows, and assembling one fused
  tensor per tenant would store shared slots N times. Instead the pool of a layer *is* one
  ``[P, ...]`` parameter (P = shared slots + private slots x tenants) installed in the live
  experts module, and a forward pre-hook maps the router's expert indices through the active
  tenant's ``[E]`` index table before the experts run. The experts module's own forward
  (eager, grouped_mm or batched_mm) does the rest, so the arithmetic is the model's own.

:meth:`ConsolidatedMoE.memory_report` and :meth:`ConsolidatedMoE.resident_bytes` both measure
storage (``untyped_storage().nbytes()``, each storage counted once), not element counts, so an
over-allocated or duplicated tensor shows up in both.

Modules
    the consolidated model (``_model``): ConsolidatedMoE,
    ReconfigureMode, RECONFIGURE_MODES; expert pools (``_pool``); non-expert sets
    (``_sets``: param_sites, unique_parameters, staged_set, live_buffers, which also
    serve any engine that swaps whole weight sets); tensor storage (``_tensors``):
    storage_bytes, host_buffer, pinned_copy, device_view; CUDA graphs of one forward
    (``_graphs``): CapturedForward

Examples
--------
>>> cmoe = ConsolidatedMoE.from_plan(plan)
>>> seconds = cmoe.activate("code")
>>> cmoe.active
'code'
>>> cmoe.generate("code", input_ids=ids, max_new_tokens=8).shape
torch.Size([1, 16])
"""

from __future__ import annotations

from moelab.reconfigure._graphs import CapturedForward
from moelab.reconfigure._model import (
    RECONFIGURE_MODES,
    ConsolidatedMoE,
    ReconfigureMode,
)
from moelab.reconfigure._sets import live_buffers, param_sites, staged_set, unique_parameters
from moelab.reconfigure._tensors import device_view, host_buffer, pinned_copy, storage_bytes

__all__ = [
    "RECONFIGURE_MODES",
    "CapturedForward",
    "ConsolidatedMoE",
    "ReconfigureMode",
    "device_view",
    "host_buffer",
    "live_buffers",
    "param_sites",
    "pinned_copy",
    "staged_set",
    "storage_bytes",
    "unique_parameters",
]
