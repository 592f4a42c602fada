"""Model states of training: weights, gradients and optimizer states, and how ZeRO/FSDP shard them.

Why a separate module: the optimizer-state arithmetic is exact per tensor (step counters, 8-bit absmax
blocks, Adafactor's factored rows and columns depend on shapes), and the ZeRO sharding rules of
Rajbhandari et al. 2019 (arXiv 1910.02054, section 5 / Figure 1) are applied on top of it.

Notation of the ZeRO paper: Ψ parameters, K bytes of optimizer state per parameter (K = 12 for
mixed-precision Adam: fp32 master copy 4 + momentum 4 + variance 4), N_d data-parallel ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from vramplan.errors import InputError

OptimizerName = Literal["adamw", "adamw-bf16", "adamw-8bit", "sgd", "sgd-momentum", "adafactor"]
Recipe = Literal["mixed", "mixed-fp32-grads", "fp32", "bf16"]

OPTIMIZERS: tuple[str, ...] = (
    "adamw",
    "adamw-bf16",
    "adamw-8bit",
    "sgd",
    "sgd-momentum",
    "adafactor",
)
RECIPES: tuple[str, ...] = ("mixed", "mixed-fp32-grads", "fp32", "bf16")
FSDP_STAGE = {"no_shard": 0, "shard_grad_op": 2, "full_shard": 3, "hybrid_shard": 3}

#: bitsandbytes blockwise 8-bit optimizers (Dettmers et al. 2021, arXiv 2110.02861, section 2.1): one fp32
#: absmax per block of 2048 values; tensors under ``min_8bit_size`` = 4096 values keep 32-bit states.
BNB_BLOCK = 2048
BNB_MIN_8BIT_SIZE = 4096
#: torch.optim.Adam/AdamW keep ``state["step"]`` as a 0-dim float32 tensor per parameter tensor.
TORCH_STEP_BYTES = 4

Shape = tuple[int, ...]
#: (shape, how many tensors of that shape) — the trainable tensors one GPU owns before ZeRO sharding.
TensorList = Sequence[tuple[Shape, int]]


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def check_optimizer(name: str) -> str:
    """Normalise an optimizer name or raise an error listing the ones we model."""
    key = name.strip().lower().replace("_", "-")
    key = {
        "adam": "adamw",
        "adamw-torch": "adamw",
        "adamw8bit": "adamw-8bit",
        "adam-8bit": "adamw-8bit",
        "paged-adamw": "adamw",
        "paged-adamw-8bit": "adamw-8bit",
        "sgd-nesterov": "sgd-momentum",
    }.get(key, key)
    if key not in OPTIMIZERS:
        raise InputError(
            f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)} "
            "(adamw = mixed-precision AdamW with an fp32 master copy)"
        )
    return key


def check_recipe(name: str) -> str:
    key = name.strip().lower()
    if key not in RECIPES:
        raise InputError(
            f"unknown precision recipe {name!r}: use one of {', '.join(RECIPES)} "
            "(mixed = bf16 weights and grads with fp32 master weights)"
        )
    return key


@dataclass(frozen=True)
class StatePrecision:
    """Bytes per trainable parameter of each state under a recipe (before optimizer moments)."""

    weight_bytes: int
    grad_bytes: int
    #: fp32 master copy held by the optimizer in mixed precision (ZeRO counts it inside K).
    master_bytes: int
    #: bytes of one full-precision optimizer moment element.
    moment_bytes: int


def state_precision(recipe: str) -> StatePrecision:
    """Per-parameter bytes of the recipe (ZeRO §3.1: 2Ψ fp16 weights + 2Ψ fp16 grads + 4Ψ fp32 master)."""
    recipe = check_recipe(recipe)
    if recipe == "mixed":
        return StatePrecision(2, 2, 4, 4)
    if (
        recipe == "mixed-fp32-grads"
    ):  # Megatron's fp32 main_grad accumulation: 2 + 4 + 12 = 18 B/param
        return StatePrecision(2, 4, 4, 4)
    if recipe == "fp32":
        return StatePrecision(4, 4, 0, 4)
    return StatePrecision(2, 2, 0, 2)  # pure bf16: weights, grads and moments in bf16


def optimizer_bytes(
    optimizer: str, recipe: str, tensors: TensorList | None, numel: int | None = None
) -> int:
    """Exact optimizer-state bytes (master copy + moments + counters) for ``tensors``.

    ``tensors=None`` means only a parameter count is known (``numel``); shape-dependent terms then use one
    flat tensor and Adafactor is refused, since its factored state depends on every matrix's shape.
    """
    optimizer = check_optimizer(optimizer)
    p = state_precision(recipe)
    items: list[tuple[Shape, int]] = (
        list(tensors) if tensors is not None else [((int(numel or 0),), 1)]
    )
    per_tensor_counter = tensors is not None
    total = 0
    for shape, count in items:
        n = _numel(shape)
        b = p.master_bytes * n
        if optimizer in ("adamw", "adamw-bf16"):
            # torch AdamW: exp_avg and exp_avg_sq in the parameter's (or master's) dtype + float32 step
            b += 2 * p.moment_bytes * n + (TORCH_STEP_BYTES if per_tensor_counter else 0)
        elif optimizer == "adamw-8bit":
            if n >= BNB_MIN_8BIT_SIZE or not per_tensor_counter:
                # state1/state2 uint8 + absmax1/absmax2 fp32 per 2048-value block (Dettmers et al. 2021)
                b += 2 * (n + 4 * _ceil(n, BNB_BLOCK))
            else:
                b += 2 * 4 * n
        elif optimizer == "sgd-momentum":
            b += p.moment_bytes * n  # torch SGD momentum_buffer
        elif optimizer == "adafactor":
            if not per_tensor_counter:
                raise InputError(
                    "Adafactor's factored state depends on every matrix's shape: name a model "
                    "(not --params) or pick another --optimizer"
                )
            # transformers Adafactor (beta1=None): exp_avg_sq_row (shape[:-1]) + exp_avg_sq_col (shape[:-2]+shape[-1:])
            # for matrices, a full exp_avg_sq for vectors (Shazeer & Stern 2018, arXiv 1804.04235, Alg. 4), in the
            # gradient's dtype, plus a 0-dim fp32 ``RMS`` tensor per parameter tensor
            if len(shape) >= 2:
                b += p.moment_bytes * (_numel(shape[:-1]) + _numel(shape[:-2] + shape[-1:]))
            else:
                b += p.moment_bytes * n
            b += TORCH_STEP_BYTES
        total += b * count
    return total


@dataclass(frozen=True)
class ModelStates:
    """Model-state bytes on one GPU, after ZeRO/FSDP sharding and offload."""

    weights: int
    gradients: int
    optimizer: int
    #: ZeRO-3/FSDP: one layer's parameters gathered in full while it runs (not in the paper's figure).
    gathered: int = 0
    #: bytes moved to host memory by offload (not on the GPU).
    offloaded: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.gathered


def zero_stage(zero: int | None, fsdp: str | None) -> int:
    """ZeRO stage from --zero or an FSDP sharding strategy (FULL_SHARD = 3, SHARD_GRAD_OP = 2)."""
    if fsdp is not None:
        key = fsdp.strip().lower().replace("-", "_")
        if key not in FSDP_STAGE:
            raise InputError(
                f"unknown FSDP sharding strategy {fsdp!r}: use full_shard, shard_grad_op, hybrid_shard or no_shard"
            )
        if zero not in (None, 0, FSDP_STAGE[key]):
            raise InputError(
                f"--fsdp {fsdp} is ZeRO stage {FSDP_STAGE[key]} but --zero {zero} was also given: pass one of them"
            )
        return FSDP_STAGE[key]
    stage = 0 if zero is None else zero
    if stage not in (0, 1, 2, 3):
        raise InputError(f"ZeRO stage must be 0, 1, 2 or 3, got {zero!r}")
    return stage


def shard(
    total: int, stage: int, dp: int, state: Literal["weights", "gradients", "optimizer"]
) -> int:
    """Per-GPU bytes of one state under ZeRO (Rajbhandari et al., Figure 1: P_os, P_os+g, P_os+g+p)."""
    threshold = {"optimizer": 1, "gradients": 2, "weights": 3}[state]
    return _ceil(total, dp) if stage >= threshold else total


def zero_model_states(
    params: int, stage: int, dp: int, k: int = 12, weight_bytes: int = 2, grad_bytes: int = 2
) -> ModelStates:
    """The ZeRO paper's closed form: (2 + 2 + K)Ψ, 2Ψ + 2Ψ + KΨ/N_d, 2Ψ + (2 + K)Ψ/N_d, (2 + 2 + K)Ψ/N_d."""
    return ModelStates(
        weights=shard(weight_bytes * params, stage, dp, "weights"),
        gradients=shard(grad_bytes * params, stage, dp, "gradients"),
        optimizer=shard(k * params, stage, dp, "optimizer"),
    )


def sharded_states(
    tensors: TensorList | None,
    numel: int,
    *,
    optimizer: str,
    recipe: str,
    stage: int,
    dp: int,
    offload_optimizer: bool = False,
    offload_params: bool = False,
    frozen_weight_bytes: int = 0,
    gathered_bytes: int = 0,
) -> ModelStates:
    """Per-GPU model states for the trainable ``tensors`` (plus frozen weights that ZeRO-3 also shards).

    Offload follows ZeRO-Offload / ZeRO-Infinity: the optimizer states (master copy included) live on the
    host; gradients are still produced on the GPU and kept at their stage's share; with parameter offload
    (stage 3 only) the GPU holds only the layer being gathered.
    """
    p = state_precision(recipe)
    weights = p.weight_bytes * numel + frozen_weight_bytes
    grads = p.grad_bytes * numel
    opt = optimizer_bytes(optimizer, recipe, tensors, numel)
    w, g, o = (
        shard(weights, stage, dp, "weights"),
        shard(grads, stage, dp, "gradients"),
        shard(opt, stage, dp, "optimizer"),
    )
    offloaded = 0
    if offload_optimizer:
        offloaded += o
        o = 0
    if offload_params:
        offloaded += w
        w = 0
    gathered = gathered_bytes if (stage == 3 and (dp > 1 or offload_params)) else 0
    return ModelStates(weights=w, gradients=g, optimizer=o, gathered=gathered, offloaded=offloaded)


def total_numel(tensors: Iterable[tuple[Shape, int]]) -> int:
    return sum(_numel(s) * c for s, c in tensors)
