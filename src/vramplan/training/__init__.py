"""Training memory: model states (ZeRO/FSDP), activations (Korthikanti et al.), LoRA/QLoRA.

Public API: ``estimate_training`` → ``TrainingBreakdown`` (``to_dict()``), plus the paper formulas
``zero_model_states``, ``korthikanti_layer_bytes``, ``korthikanti_total_first_stage``, ``layer_bytes``.
"""

from vramplan.training.activations import (
    LayerShape,
    korthikanti_layer_bytes,
    korthikanti_total_first_stage,
    layer_bytes,
    stage_activation_bytes,
)
from vramplan.training.estimate import Fix, TrainingBreakdown, TrainingConfig, estimate_training
from vramplan.training.lora import adapted_matrices, adapter_params, parse_targets
from vramplan.training.states import (
    ModelStates,
    optimizer_bytes,
    sharded_states,
    state_precision,
    zero_model_states,
)

__all__ = [
    "Fix",
    "LayerShape",
    "ModelStates",
    "TrainingBreakdown",
    "TrainingConfig",
    "adapted_matrices",
    "adapter_params",
    "estimate_training",
    "korthikanti_layer_bytes",
    "korthikanti_total_first_stage",
    "layer_bytes",
    "optimizer_bytes",
    "parse_targets",
    "sharded_states",
    "stage_activation_bytes",
    "state_precision",
    "zero_model_states",
]
