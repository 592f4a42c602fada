"""Cross-check on CPU: a real tiny Llama, one training step, the bytes torch actually allocates.

Recipe compared: ``precision="fp32"`` (the model is fp32, so weights 4 B, gradients 4 B, and torch's AdamW
state is exp_avg + exp_avg_sq in fp32 plus a 0-dim float32 ``step`` per parameter tensor). The estimate
must match p.grad and optimizer-state tensor bytes exactly.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vramplan.model.hf_config import spec_from_config
from vramplan.training import estimate_training

CFG = {
    "model_type": "llama",
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "rms_norm_eps": 1e-6,
}


def _model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**{k: v for k, v in CFG.items() if k != "model_type"})
    return transformers.LlamaForCausalLM(config).float()


def _step(model, params, opt) -> None:  # type: ignore[no-untyped-def]
    ids = torch.randint(0, CFG["vocab_size"], (2, 16))
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    opt.step()


def _state_bytes(opt) -> int:  # type: ignore[no-untyped-def]
    return sum(
        v.numel() * v.element_size()
        for st in opt.state.values()
        for v in st.values()
        if torch.is_tensor(v)
    )


def _grad_bytes(params) -> int:  # type: ignore[no-untyped-def]
    return sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)


SPEC = spec_from_config(CFG, name="tiny-llama")


def test_param_count_matches_torch() -> None:
    model = _model()
    b = estimate_training(SPEC, precision="fp32", search=False)
    assert b.trainable_params == sum(p.numel() for p in model.parameters())
    assert b.per_gpu.weights == sum(p.numel() * p.element_size() for p in model.parameters())


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", "sgd-momentum", "adafactor"])
def test_full_finetune_grads_and_optimizer_state_exact(optimizer: str) -> None:
    model = _model()
    params = list(model.parameters())
    if optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-3)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=1e-3)
    elif optimizer == "sgd-momentum":
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    else:
        from transformers.optimization import Adafactor

        opt = Adafactor(params, lr=1e-3, relative_step=False, scale_parameter=False)
    _step(model, params, opt)
    b = estimate_training(SPEC, precision="fp32", optimizer=optimizer, search=False)
    assert b.per_gpu.gradients == _grad_bytes(params)
    assert b.per_gpu.optimizer == _state_bytes(opt)
    if (
        optimizer == "adamw"
    ):  # spell the recipe out: 8 B/param of moments + 4 B per tensor for `step`
        n = sum(p.numel() for p in params)
        assert _state_bytes(opt) == 8 * n + 4 * len(params)


class _LoRALinear(torch.nn.Module):
    """LoRA by hand (peft is not installed): y = W x + B(A x), W frozen."""

    def __init__(self, base: torch.nn.Linear, r: int) -> None:
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.A = torch.nn.Linear(base.in_features, r, bias=False)
        self.B = torch.nn.Linear(r, base.out_features, bias=False)
        torch.nn.init.zeros_(self.B.weight)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.base(x) + self.B(self.A(x))


@pytest.mark.parametrize("targets", [("q", "v"), ("q", "k", "v", "o")])
def test_lora_trainable_bytes_exact(targets: tuple[str, ...]) -> None:
    r = 4
    model = _model()
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        for t in targets:
            name = f"{t}_proj"
            setattr(layer.self_attn, name, _LoRALinear(getattr(layer.self_attn, name), r))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    _step(model, trainable, opt)
    b = estimate_training(
        SPEC,
        method="lora",
        lora_rank=r,
        lora_targets=",".join(targets),
        precision="fp32",
        search=False,
    )
    assert b.trainable_params == sum(p.numel() for p in trainable)
    assert b.per_gpu.gradients == _grad_bytes(trainable)
    assert b.per_gpu.optimizer == _state_bytes(opt)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    adapters = sum(p.numel() * p.element_size() for p in trainable)
    assert b.per_gpu.weights == frozen + adapters
