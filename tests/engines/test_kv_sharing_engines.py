"""KV-shared layers (Gemma 3n: the last layers reuse an earlier layer's cache) hold no KV in the engines
that share it either: transformers' cache and llama.cpp's (``n_layer_kv_from_start``) keep the same
per-token bytes as the layout, which tests/model/test_gemma3n.py checks against a real tiny model's cache."""

from __future__ import annotations

import pytest

from vramplan.engines.hf import predict_from_settings as predict_hf
from vramplan.engines.llamacpp import predict_from_settings as predict_llamacpp
from vramplan.estimator import estimate
from vramplan.model.load import load_model

MODELS = ["google/gemma-3n-E2B", "google/gemma-3n-E4B"]


@pytest.mark.parametrize("model", MODELS)
def test_only_layers_with_their_own_cache_count(model: str) -> None:
    spec = load_model(model).spec
    own = [i for i in range(spec.num_layers) if spec.layer_keeps_kv(i)]
    assert 0 < len(own) < spec.num_layers  # some layers share
    per_token = estimate(model).kv_bytes_per_token
    hf = predict_hf({"model": model, "batch_size": 1}, gpu="L4")
    cpp = predict_llamacpp({"model": model, "ctx_size": 4096}, gpu="L4")
    assert hf.kv_bytes_per_token == per_token
    assert cpp.kv_bytes_per_token == per_token
