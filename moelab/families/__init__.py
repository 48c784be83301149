"""Family adapters: the one place that knows how each MoE architecture stores its experts.

Registry
    available_families, get_family, detect_family, register_family
The protocol (``_base``)
    MoEFamily
Value types (``_types``)
    ExpertSlot, TensorRef, NonExpertGroup, CheckpointLayout, ExpertLayout, config_of
Parameter groups (``MoEFamily.parameter_groups``)
    EXPERTS_GROUP, NON_EXPERT_GROUPS, OTHER_GROUP
Comparing models (``_compat``)
    check_compatible
Fused expert tensors (``_fused``)
    FusedGatedFamily: the shared adapter of decoder MoEs whose experts transformers stores in
    one fused tensor per layer (the base of ``mixtral`` and ``olmoe``; not exported)
Locking a model (``_locks``)
    forbid_conversion: ``.to()``/``.half()``/``save_pretrained`` raise, for models rebuilt
    around tensors that ``nn.Module`` does not see

Built-in families: ``"mixtral"``, ``"olmoe"``, ``"switch_transformers"``.

Examples
--------
>>> from moelab.families import get_family
>>> get_family("mixtral").expert_matrix_names()
('w1', 'w2', 'w3')
"""

from __future__ import annotations

from typing import Any

from labcore.registry import Registry
from moelab.errors import UnsupportedModelError
from moelab.families._base import MoEFamily
from moelab.families._compat import check_compatible
from moelab.families._locks import forbid_conversion
from moelab.families._types import (
    CHECKPOINT_LAYOUTS,
    EXPERT_LAYOUTS,
    EXPERTS_GROUP,
    NON_EXPERT_GROUPS,
    OTHER_GROUP,
    CheckpointLayout,
    ExpertLayout,
    ExpertSlot,
    NonExpertGroup,
    TensorRef,
    config_of,
)
from moelab.families.mixtral import MixtralFamily
from moelab.families.olmoe import OlmoeFamily
from moelab.families.switch import SwitchTransformersFamily

__all__ = [
    "CHECKPOINT_LAYOUTS",
    "EXPERTS_GROUP",
    "EXPERT_LAYOUTS",
    "NON_EXPERT_GROUPS",
    "OTHER_GROUP",
    "CheckpointLayout",
    "ExpertLayout",
    "ExpertSlot",
    "MoEFamily",
    "NonExpertGroup",
    "TensorRef",
    "available_families",
    "check_compatible",
    "detect_family",
    "forbid_conversion",
    "get_family",
    "register_family",
]

_FAMILIES: Registry[MoEFamily] = Registry(
    "MoE family", plural="families", duplicate_hint="pick another name", item_type=MoEFamily
)


#: Public faces of the registry: ``register_family(adapter)``, ``available_families()``
#: (sorted names), ``get_family(name)``; the errors are the registry's.
register_family = _FAMILIES.add_named
available_families = _FAMILIES.names
get_family = _FAMILIES.get


def detect_family(model_or_config: Any) -> MoEFamily:
    """The family adapter that handles a model or config.

    Parameters
    ----------
    model_or_config : PreTrainedModel or PretrainedConfig
        A model, or its config (anything :func:`config_of` accepts).

    Returns
    -------
    MoEFamily
        The first registered family whose ``matches`` is true.

    Raises
    ------
    UnsupportedModelError
        If no family matches; the message names the config's ``model_type`` and the
        supported families.
    """
    config = config_of(model_or_config)
    for family in _FAMILIES.values():
        if family.matches(config):
            return family
    supported = ", ".join(
        f"{f.name} (model_type {'/'.join(f.model_types)})" for f in _FAMILIES.values()
    )
    raise UnsupportedModelError(
        f"model_type {getattr(config, 'model_type', None)!r} is not a supported mixture-of-experts "
        f"family; supported: {supported}"
    )


for _family in (MixtralFamily(), OlmoeFamily(), SwitchTransformersFamily()):
    register_family(_family)
del _family
