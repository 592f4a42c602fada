"""`estimate_training`: per-GPU memory of one training step, whether it fits, and what would make it fit.

Composition (engine-memory.md §5): model states (states.py, ZeRO/FSDP sharding, offload) + activations
(activations.py, Korthikanti et al. 2022) + fixed overheads (CUDA context, framework workspaces, NCCL),
computed for every pipeline stage; the reported GPU is the stage with the largest total.
Gradient accumulation does not appear: it repeats micro-batches in time and adds no activation memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vramplan.errors import InputError
from vramplan.hardware import GPU, gpu_from
from vramplan.memory.overhead import OverheadAssumptions
from vramplan.memory.weights import pp_layer_split, rank_shape
from vramplan.model.load import LoadedModel, load_model
from vramplan.model.params import count_params, inventory
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision, scheme_by_name
from vramplan.training.activations import LayerShape, check_recompute, stage_activation_bytes
from vramplan.training.lora import DEFAULT_TARGETS, adapted_matrices, parse_targets
from vramplan.training.states import (
    check_optimizer,
    check_recipe,
    sharded_states,
    state_precision,
    total_numel,
    zero_stage,
)

METHODS = ("full", "lora", "qlora")
#: HF transformers' causal-LM loss: bf16 logits (2) + fp32 upcast (4) + fp32 log-softmax saved by cross-entropy (4).
HF_LOGIT_BYTES = 10
DEFAULT_OVERHEADS = OverheadAssumptions()


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a training estimate depends on; frozen so fixes are `replace(config, ...)`."""

    method: str = "full"
    micro_batch: int = 1
    seq_len: int = 2048
    gpus: int = 1
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    zero: int = 0
    offload: str = "none"
    offload_params: bool = False
    recompute: str = "none"
    optimizer: str = "adamw"
    precision: str = "mixed"
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    #: dtype of LoRA adapter weights. peft upcasts adapters to float32 by default
    #: (``autocast_adapter_dtype=True``), so their weights, gradients and Adam moments are fp32;
    #: measured on an H200 (benchmarks/gpu/measurements_train_h200.json). "bfloat16" follows the recipe.
    adapter_dtype: str = "float32"
    flash_attention: bool = True
    sequence_parallel: bool = False
    num_microbatches: int | None = None
    interleaved: int = 1
    #: None: dropout masks for plain-MLP (GPT/OPT/BLOOM-style) models, none for gated (Llama-style) models.
    dropout: bool | None = None
    #: None: paged optimizer states for QLoRA (the paper's paged AdamW), not otherwise.
    paged_optimizer: bool | None = None
    logit_bytes: int = HF_LOGIT_BYTES

    @property
    def data_parallel(self) -> int:
        return self.gpus // (self.tensor_parallel * self.pipeline_parallel)


@dataclass(frozen=True)
class Fix:
    """One change that makes the run fit, with its per-GPU total after the change."""

    change: str
    flag: str
    total_bytes: int
    cost: str


@dataclass(frozen=True)
class StageBytes:
    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    pageable: int
    offloaded: int
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead


@dataclass(frozen=True)
class TrainingBreakdown:
    """Per-GPU training memory; ``to_dict()`` is the CLI's --json."""

    model: str
    config: TrainingConfig
    params: int
    trainable_params: int
    per_gpu: StageBytes
    worst_stage: int
    gpu_name: str | None
    gpu_memory_bytes: int | None
    fits: bool | None
    max_micro_batch: int | None
    max_seq_len: int | None
    fixes: tuple[Fix, ...]
    assumptions: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return self.per_gpu.total

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        p = self.per_gpu
        return {
            "model": self.model,
            "method": c.method,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "micro_batch": c.micro_batch,
            "seq_len": c.seq_len,
            "gpus": c.gpus,
            "data_parallel": c.data_parallel,
            "tensor_parallel": c.tensor_parallel,
            "pipeline_parallel": c.pipeline_parallel,
            "zero_stage": c.zero,
            "optimizer": c.optimizer,
            "precision": c.precision,
            "recompute": c.recompute,
            "flash_attention": c.flash_attention,
            "offload": c.offload,
            "offload_params": c.offload_params,
            "lora_rank": c.lora_rank if c.method != "full" else None,
            "lora_targets": list(c.lora_targets) if c.method != "full" else None,
            "per_gpu": {
                "weights_bytes": p.weights,
                "gradients_bytes": p.gradients,
                "optimizer_bytes": p.optimizer,
                "activations_bytes": p.activations,
                "overhead_bytes": p.overhead,
                "total_bytes": p.total,
                "pageable_bytes": p.pageable,
                "offloaded_to_cpu_bytes": p.offloaded,
                "detail": dict(p.detail),
            },
            "worst_pipeline_stage": self.worst_stage,
            "gpu": self.gpu_name,
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "fits": self.fits,
            "max_micro_batch": self.max_micro_batch,
            "max_seq_len": self.max_seq_len,
            "fixes": [asdict(f) for f in self.fixes],
            "assumptions": list(self.assumptions),
        }


# --------------------------------------------------------------------------------------------- core
def _validate(cfg: TrainingConfig, spec: ModelSpec | None) -> TrainingConfig:
    if cfg.method not in METHODS:
        raise InputError(f"unknown --method {cfg.method!r}: use full, lora or qlora")
    for name in (
        "micro_batch",
        "seq_len",
        "gpus",
        "tensor_parallel",
        "pipeline_parallel",
        "interleaved",
    ):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise InputError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")
    if cfg.gpus % (cfg.tensor_parallel * cfg.pipeline_parallel):
        raise InputError(
            f"--gpus {cfg.gpus} is not a multiple of TP x PP = {cfg.tensor_parallel * cfg.pipeline_parallel}: "
            "the data-parallel size must be a whole number"
        )
    if spec is not None and cfg.pipeline_parallel > spec.num_layers:
        raise InputError(
            f"pipeline size {cfg.pipeline_parallel} exceeds the model's {spec.num_layers} layers"
        )
    if cfg.adapter_dtype not in ("float32", "bfloat16"):
        raise InputError(
            f"unknown --adapter-dtype {cfg.adapter_dtype!r}: use float32 (peft's default) or bfloat16"
        )
    optimizer = check_optimizer(cfg.optimizer)
    recipe = check_recipe(cfg.precision)
    if optimizer == "adamw-bf16":
        recipe = "bf16"
    recompute = check_recompute(cfg.recompute)
    offload = cfg.offload.strip().lower()
    if offload not in ("none", "cpu", "nvme"):
        raise InputError(
            f"unknown --offload {cfg.offload!r}: use none, cpu or nvme (optimizer states to host memory or disk)"
        )
    stage = zero_stage(cfg.zero, None)
    dp = cfg.data_parallel
    if stage > 0 and dp == 1 and offload == "none":
        raise InputError(
            f"ZeRO stage {stage} shards states over data-parallel GPUs, and with 1 data-parallel GPU it has "
            "no effect: pass --gpus N (N >= 2), or --zero 0 (to offload on one GPU, add --offload cpu)"
        )
    if cfg.offload_params and stage != 3:
        raise InputError(
            "parameter offload needs ZeRO stage 3 (ZeRO-Infinity / FSDP CPU offload): pass --zero 3"
        )
    return replace(
        cfg, optimizer=optimizer, precision=recipe, recompute=recompute, offload=offload, zero=stage
    )


def _trainable_recipe(cfg: TrainingConfig) -> str:
    """LoRA adapters kept in float32 (peft's default) train with fp32 weights, grads and moments."""
    if cfg.method != "full" and cfg.adapter_dtype == "float32":
        return "fp32"
    return cfg.precision


def _stage_bytes(
    spec: ModelSpec, cfg: TrainingConfig, stage: int, overheads: OverheadAssumptions
) -> tuple[StageBytes, int]:
    """All per-GPU bytes of pipeline stage ``stage`` and the trainable parameters on that GPU."""
    tp, pp, L = cfg.tensor_parallel, cfg.pipeline_parallel, spec.num_layers
    layers_here = pp_layer_split(L, pp)[stage]
    recipe = _trainable_recipe(cfg)
    sp = state_precision(recipe)

    def count_here(g) -> int:
        if g.stage == "layer":
            return g.count * layers_here // L
        if g.stage == "first":
            return g.count if stage == 0 else 0
        return g.count if stage == pp - 1 else 0

    trainable: list[tuple[tuple[int, ...], int]] = []
    frozen_bytes = 0
    layer_weight_bytes = 0  # one layer's weights, for the ZeRO-3 gather buffer
    largest_linear = 0
    if cfg.method == "full":
        for g in inventory(spec):
            c = count_here(g)
            if c == 0:
                continue
            shape = rank_shape(g, spec, tp, vocab_padding=1)
            if g.role == "buffer":
                frozen_bytes += 4 * _numel(shape) * c
                continue
            trainable.append((shape, c))
            if g.stage == "layer":
                layer_weight_bytes += sp.weight_bytes * _numel(shape) * g.count // L
    else:
        base_dtype = "float32" if cfg.precision == "fp32" else "bfloat16"
        precision = Precision(base_dtype, scheme_by_name("nf4") if cfg.method == "qlora" else None)
        for g in inventory(spec):
            c = count_here(g)
            if c == 0:
                continue
            shape = rank_shape(g, spec, tp, vocab_padding=1)
            nbytes = precision.tensor_bytes(g.role, g.name, shape)
            frozen_bytes += nbytes * c
            if g.stage == "layer":
                layer_weight_bytes += nbytes * g.count // L
                if g.role in ("linear", "expert") and len(shape) == 2:
                    largest_linear = max(largest_linear, _numel(shape))
        r = cfg.lora_rank
        for m in adapted_matrices(spec, cfg.lora_targets, r):
            c = m.group.count * layers_here // L
            if c == 0:
                continue
            out_rank, in_rank = rank_shape(m.group, spec, tp, vocab_padding=1)
            # Megatron/NeMo LoRA under TP: column-parallel → A replicated, B split; row-parallel → A split, B replicated
            trainable.append(((r, in_rank), c))
            trainable.append(((out_rank, r), c))
            layer_weight_bytes += sp.weight_bytes * r * (in_rank + out_rank) * m.group.count // L
    numel = total_numel(trainable)
    dp = cfg.data_parallel
    states = sharded_states(
        trainable,
        numel,
        optimizer=cfg.optimizer,
        recipe=recipe,
        stage=cfg.zero,
        dp=dp,
        offload_optimizer=cfg.offload != "none",
        offload_params=cfg.offload_params,
        frozen_weight_bytes=frozen_bytes,
        gathered_bytes=layer_weight_bytes,
    )
    # activations
    dropout = cfg.dropout if cfg.dropout is not None else spec.mlp_kind != "gated"
    extra = 0
    if cfg.method != "full":
        # adapter intermediates: the r-wide A·x output of every adapted matrix, 2 bytes per element per token
        per_layer_adapters = (
            sum(m.group.count for m in adapted_matrices(spec, cfg.lora_targets, cfg.lora_rank)) // L
        )
        extra = 2 * cfg.lora_rank * per_layer_adapters
    act = stage_activation_bytes(
        LayerShape.of(spec),
        spec.vocab_size,
        cfg.seq_len,
        cfg.micro_batch,
        layers_on_stage=layers_here,
        stage=stage,
        pp=pp,
        t=tp,
        sequence_parallel=cfg.sequence_parallel,
        recompute=cfg.recompute,
        flash_attention=cfg.flash_attention,
        dropout=dropout,
        num_microbatches=cfg.num_microbatches,
        interleaved=cfg.interleaved,
        logit_bytes=cfg.logit_bytes,
        extra_per_token_per_layer=extra,
    )
    dequant = (
        2 * largest_linear if cfg.method == "qlora" else 0
    )  # one NF4 matrix dequantized to bf16 at a time
    nccl = overheads.nccl_bytes if cfg.gpus > 1 else 0
    overhead = overheads.cuda_context_bytes + overheads.framework_bytes + nccl + dequant
    paged = cfg.paged_optimizer if cfg.paged_optimizer is not None else cfg.method == "qlora"
    detail = {
        "activations_layers": act.layers,
        "activations_recompute_working_set": act.recompute_working_set,
        "activations_embedding_and_logits": act.head_and_tail,
        "in_flight_microbatches": act.in_flight_microbatches,
        "zero3_gathered_layer": states.gathered,
        "cuda_context": overheads.cuda_context_bytes,
        "framework": overheads.framework_bytes,
        "nccl": nccl,
        "qlora_dequant_buffer": dequant,
        "frozen_base_weights": frozen_bytes if cfg.method != "full" else 0,
    }
    return StageBytes(
        weights=states.weights + states.gathered,
        gradients=states.gradients,
        optimizer=states.optimizer,
        activations=act.total,
        overhead=overhead,
        pageable=states.optimizer if paged else 0,
        offloaded=states.offloaded,
        detail=detail,
    ), numel


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _worst(
    spec: ModelSpec, cfg: TrainingConfig, overheads: OverheadAssumptions
) -> tuple[StageBytes, int, int]:
    best: tuple[StageBytes, int, int] | None = None
    for stage in range(cfg.pipeline_parallel):
        sb, numel = _stage_bytes(spec, cfg, stage, overheads)
        if best is None or sb.total > best[0].total:
            best = (sb, stage, numel)
    assert best is not None
    return best


def _count_only(params: int, cfg: TrainingConfig, overheads: OverheadAssumptions) -> StageBytes:
    """--params N: model states from the count alone (no shapes, no activations)."""
    if cfg.method != "full":
        raise InputError(
            "LoRA/QLoRA need the model's matrix shapes: name a model instead of --params"
        )
    per_rank = -(-params // (cfg.tensor_parallel * cfg.pipeline_parallel))
    st = sharded_states(
        None,
        per_rank,
        optimizer=cfg.optimizer,
        recipe=cfg.precision,
        stage=cfg.zero,
        dp=cfg.data_parallel,
        offload_optimizer=cfg.offload != "none",
        offload_params=cfg.offload_params,
    )
    nccl = overheads.nccl_bytes if cfg.gpus > 1 else 0
    return StageBytes(
        weights=st.weights,
        gradients=st.gradients,
        optimizer=st.optimizer,
        activations=0,
        overhead=overheads.cuda_context_bytes + overheads.framework_bytes + nccl,
        pageable=0,
        offloaded=st.offloaded,
    )


def _fits(sb: StageBytes, gpu: GPU) -> bool:
    return sb.total - sb.pageable <= gpu.memory_bytes


def _search(pred, hi: int) -> int:
    """Largest x in [1, hi] with pred(x) true, assuming monotone; 0 when pred(1) is false."""
    if not pred(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pred(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fixes(
    spec: ModelSpec, cfg: TrainingConfig, gpu: GPU, overheads: OverheadAssumptions, max_mb: int
) -> list[Fix]:
    """Single changes that make it fit, cheapest first; if none does, the shortest cumulative stack that does."""

    def total(c: TrainingConfig) -> StageBytes | None:
        try:
            return _worst(spec, _validate(c, spec), overheads)[0]
        except InputError:
            return None

    dp = cfg.data_parallel
    candidates: list[tuple[str, str, TrainingConfig, str]] = []
    if not cfg.flash_attention:
        candidates.append(
            (
                "use FlashAttention (no s x s score tensors)",
                "--flash-attention",
                replace(cfg, flash_attention=True),
                "none",
            )
        )
    if cfg.recompute == "none":
        candidates.append(
            (
                "selective recomputation of attention",
                "--recompute selective",
                replace(cfg, recompute="selective"),
                "~2-3% more FLOPs",
            )
        )
    if cfg.recompute != "full":
        candidates.append(
            (
                "full activation recomputation (gradient checkpointing)",
                "--recompute full",
                replace(cfg, recompute="full"),
                "~30-40% more time",
            )
        )
    if dp > 1:
        for z in range(cfg.zero + 1, 4):
            candidates.append(
                (
                    f"ZeRO stage {z}",
                    f"--zero {z}",
                    replace(cfg, zero=z),
                    "more communication" if z == 3 else "none at the same volume",
                )
            )
    if 1 <= max_mb < cfg.micro_batch:
        candidates.append(
            (
                f"micro-batch {max_mb} with gradient accumulation for the same global batch",
                f"--micro-batch {max_mb}",
                replace(cfg, micro_batch=max_mb),
                "lower GPU utilisation",
            )
        )
    if cfg.offload == "none":
        candidates.append(
            (
                "offload optimizer states to CPU (ZeRO-Offload)",
                "--offload cpu",
                replace(cfg, offload="cpu"),
                "slower steps, host RAM",
            )
        )
    if cfg.method == "full":
        candidates.append(
            (
                "LoRA instead of full fine-tuning",
                "--method lora",
                replace(cfg, method="lora"),
                "fewer trainable parameters",
            )
        )
    if cfg.method != "qlora":
        candidates.append(
            (
                "QLoRA (NF4 frozen base + LoRA)",
                "--method qlora",
                replace(cfg, method="qlora"),
                "fewer trainable parameters, slower",
            )
        )
    fixes: list[Fix] = []
    for change, flag, c, cost in candidates:
        sb = total(c)
        if sb is not None and _fits(sb, gpu):
            fixes.append(Fix(change, flag, sb.total, cost))
    more = _more_gpus(spec, cfg, gpu, overheads)
    if more is not None:
        fixes.append(more)
    if not fixes:
        stack = cfg
        flags: dict[
            str, str
        ] = {}  # option -> flag, so a later value of the same option replaces the earlier one
        for _change, flag, c, _ in candidates:
            if flag.startswith("--micro-batch"):
                continue
            changed = {
                k: getattr(c, k)
                for k in ("flash_attention", "recompute", "zero", "offload", "method")
                if getattr(c, k) != getattr(cfg, k)
            }
            trial = replace(stack, **changed)
            if total(trial) is None:
                continue
            stack = trial
            for k in changed:
                flags[k] = flag
            sb = total(stack)
            if sb is not None and _fits(sb, gpu):
                text = " ".join(dict.fromkeys(flags.values()))
                fixes.append(
                    Fix(f"combined: {text}", text, sb.total, "the costs of each change together")
                )
                break
    return fixes


def _more_gpus(
    spec: ModelSpec, cfg: TrainingConfig, gpu: GPU, overheads: OverheadAssumptions
) -> Fix | None:
    """Fewest data-parallel GPUs (ZeRO-3 when going past one) that fit, up to 4096."""
    group = cfg.tensor_parallel * cfg.pipeline_parallel
    for dp in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        if dp * group <= cfg.gpus:
            continue
        c = replace(cfg, gpus=dp * group, zero=3)
        sb = _worst(spec, _validate(c, spec), overheads)[0]
        if _fits(sb, gpu):
            return Fix(
                f"{dp * group} GPUs with ZeRO-3",
                f"--gpus {dp * group} --zero 3",
                sb.total,
                "more GPUs",
            )
        if sb.total - sb.pageable - sb.weights - sb.gradients - sb.optimizer > gpu.memory_bytes:
            return None  # activations + overhead alone exceed the GPU: more data parallelism cannot help
    return None


def _assumptions(spec: ModelSpec | None, cfg: TrainingConfig) -> tuple[str, ...]:
    sp = state_precision(cfg.precision)
    notes = [
        (
            f"model states per trainable parameter: weights {sp.weight_bytes} B + gradients {sp.grad_bytes} B + "
            f"optimizer {cfg.optimizer} (master copy {sp.master_bytes} B + moments) under recipe {cfg.precision}; "
            "ZeRO sharding per Rajbhandari et al. 2019 (stage 1: optimizer / N_d, 2: + gradients, 3: + weights)"
        ),
        "gradient accumulation repeats micro-batches in time and adds no activation memory",
        "overhead: CUDA context + framework workspaces (+ NCCL buffers with more than one GPU), measured on vLLM runs",
    ]
    if cfg.optimizer == "adamw-bf16":
        notes.append(
            "adamw-bf16 = pure bf16 training: weights, gradients and both moments in bf16, no fp32 master"
        )
    if cfg.optimizer == "adamw-8bit":
        notes.append(
            "8-bit AdamW (bitsandbytes): uint8 moments + fp32 absmax per 2048 values; tensors < 4096 values keep fp32 states"
        )
    if cfg.offload != "none":
        notes.append(
            "offload: optimizer states (master copy included) live in host memory; gradients stay on the GPU at their ZeRO share"
        )
    if cfg.zero == 3 and cfg.data_parallel > 1:
        notes.append(
            "ZeRO-3/FSDP full shard: one layer's parameters gathered in full while it runs (added to weights)"
        )
    if spec is None:
        notes.append(
            "--params gives only a count: model states only, activations not estimated (name a model for them)"
        )
        return tuple(notes)
    dropout = cfg.dropout if cfg.dropout is not None else spec.mlp_kind != "gated"
    notes += [
        (
            "activations per Korthikanti et al. 2022 Table 2, generalised term by term to GQA widths and "
            f"{'gated (SwiGLU: gate, up, act, product = 8f bytes/token)' if spec.mlp_kind == 'gated' else 'plain (4f bytes/token)'} "
            f"MLP of width {LayerShape.of(spec).ffn}; 2-byte activations"
        ),
        f"dropout masks {'counted (1 byte each)' if dropout else 'not counted: Llama-style models train without dropout'}",
        (
            "FlashAttention: no s x s scores kept (the selective-recompute row)"
            if cfg.flash_attention
            else "unfused attention keeps softmax, dropout mask and dropout output per head (5as^2b)"
        ),
        f"logits: {cfg.logit_bytes} bytes per vocabulary entry per token (bf16 logits + fp32 upcast + fp32 log-softmax, as transformers' loss)",
        "vocabulary not padded (Megatron pads to 128 x TP)",
    ]
    if cfg.recompute == "full":
        notes.append(
            "full recompute: 2sbh per layer checkpoint + one layer's activations (less its input) while it is recomputed"
        )
    if cfg.recompute == "selective" and not cfg.flash_attention:
        notes.append(
            "selective recompute: one layer's s x s score tensors re-created during its backward"
        )
    if cfg.pipeline_parallel > 1:
        notes.append(
            "pipeline 1F1B: stage i holds min(p - i, m) micro-batches; the worst stage is reported"
        )
    if cfg.method != "full":
        notes.append(
            f"LoRA adapters in {cfg.adapter_dtype}"
            + (
                " (peft's default upcast): fp32 weights, gradients and moments"
                if cfg.adapter_dtype == "float32"
                else ""
            )
        )
        notes.append(
            f"LoRA r={cfg.lora_rank} on {','.join(cfg.lora_targets)}: r(d_in + d_out) per adapted matrix trained; "
            "activations through the frozen layers kept as in full fine-tuning, plus r-wide adapter outputs"
        )
    if cfg.method == "qlora":
        notes.append(
            "QLoRA: linear weights NF4 with double quantization (exact bitsandbytes bytes), embeddings, "
            "lm_head and norms bf16; one linear dequantized to bf16 at a time"
        )
    if cfg.paged_optimizer if cfg.paged_optimizer is not None else cfg.method == "qlora":
        notes.append(
            "paged optimizer: optimizer states may page to host memory, so 'fits' does not count them"
        )
    return tuple(notes)


# ------------------------------------------------------------------------------------------- public
def estimate_training(
    model: str | ModelSpec | LoadedModel | None = None,
    *,
    params: int | None = None,
    gpu: str | GPU | None = None,
    gpu_memory: str | int | None = None,
    overheads: OverheadAssumptions = DEFAULT_OVERHEADS,
    search: bool = True,
    **options: Any,
) -> TrainingBreakdown:
    """Per-GPU training memory for ``model`` (name, path, Hub id, ModelSpec) or a bare ``params`` count.

    ``options`` are TrainingConfig fields (method, micro_batch, seq_len, gpus, zero, offload, recompute,
    optimizer, precision, lora_rank, lora_targets, flash_attention, ...). ``fsdp="full_shard"`` maps to
    ZeRO 3 and ``"shard_grad_op"`` to ZeRO 2.
    """
    fsdp = options.pop("fsdp", None)
    if fsdp is not None:
        options["zero"] = zero_stage(options.get("zero"), fsdp)
    if "lora_targets" in options:
        options["lora_targets"] = parse_targets(options["lora_targets"])
    unknown = set(options) - set(TrainingConfig.__dataclass_fields__)
    if unknown:
        raise InputError(
            f"unknown training option(s) {', '.join(sorted(unknown))}: "
            f"use {', '.join(TrainingConfig.__dataclass_fields__)}"
        )
    hw = gpu_from(gpu, gpu_memory)
    if model is None:
        if params is None:
            raise InputError("give a model (name, path or Hub id) or --params N")
        cfg = _validate(TrainingConfig(**options), None)
        sb = _count_only(params, cfg, overheads)
        return TrainingBreakdown(
            f"{params:,} parameters",
            cfg,
            params,
            params,
            sb,
            0,
            hw.name if hw else None,
            hw.memory_bytes if hw else None,
            _fits(sb, hw) if hw else None,
            None,
            None,
            tuple(_count_fixes(params, cfg, hw, overheads)) if hw and not _fits(sb, hw) else (),
            _assumptions(None, cfg),
        )
    loaded = (
        model
        if isinstance(model, LoadedModel)
        else (
            LoadedModel(model, model.source or model.name)
            if isinstance(model, ModelSpec)
            else load_model(model)
        )
    )
    spec = loaded.spec
    cfg = _validate(TrainingConfig(**options), spec)
    sb, stage, _ = _worst(spec, cfg, overheads)
    trainable_total = (
        count_params(spec).total
        if cfg.method == "full"
        else sum(
            m.adapter_params(cfg.lora_rank)
            for m in adapted_matrices(spec, cfg.lora_targets, cfg.lora_rank)
        )
    )
    fits = max_mb = max_s = None
    fixes: tuple[Fix, ...] = ()
    if hw is not None:
        fits = _fits(sb, hw)
        if search:

            def ok(c: TrainingConfig) -> bool:
                return _fits(_worst(spec, c, overheads)[0], hw)

            max_mb = _search(lambda b: ok(replace(cfg, micro_batch=b)), 1 << 16)
            max_s = _search(lambda s: ok(replace(cfg, seq_len=s)), 1 << 22)
            if not fits:
                fixes = tuple(_fixes(spec, cfg, hw, overheads, max_mb))
    return TrainingBreakdown(
        spec.name,
        cfg,
        count_params(spec).total,
        trainable_total,
        sb,
        stage,
        hw.name if hw else None,
        hw.memory_bytes if hw else None,
        fits,
        max_mb,
        max_s,
        fixes,
        _assumptions(spec, cfg),
    )


def _count_fixes(
    params: int, cfg: TrainingConfig, gpu: GPU, overheads: OverheadAssumptions
) -> list[Fix]:
    out = []
    if cfg.offload == "none":
        c = _validate(replace(cfg, offload="cpu"), None)
        sb = _count_only(params, c, overheads)
        if _fits(sb, gpu):
            out.append(
                Fix(
                    "offload optimizer states to CPU (ZeRO-Offload)",
                    "--offload cpu",
                    sb.total,
                    "slower steps",
                )
            )
    for dp in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        c = _validate(
            replace(cfg, gpus=dp * cfg.tensor_parallel * cfg.pipeline_parallel, zero=3), None
        )
        sb = _count_only(params, c, overheads)
        if _fits(sb, gpu):
            out.append(
                Fix(
                    f"{c.gpus} GPUs with ZeRO-3", f"--gpus {c.gpus} --zero 3", sb.total, "more GPUs"
                )
            )
            break
    return out
