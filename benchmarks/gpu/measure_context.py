"""Measure the non-torch memory a PyTorch process holds on a GPU (run on a CUDA machine).

    python benchmarks/gpu/measure_context.py --out benchmarks/gpu/measurements_context.json

Device-used memory (total - free, from cudaMemGetInfo) minus torch's reserved bytes, after: creating
the CUDA context; the first bf16 matmul (cuBLAS/cuBLASLt handles and workspace); the first SDPA
attention call (attention-kernel workspaces). These are the 'CUDA context' and 'framework' overheads
vramplan charges per GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import torch
import torch.nn.functional as F


def non_torch() -> int:
    free, total = torch.cuda.mem_get_info()
    return (total - free) - torch.cuda.memory_reserved()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    free0, total = torch.cuda.mem_get_info()  # creates the context
    baseline_used_by_others = None
    try:
        smi = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=memory.used,memory.total,driver_version",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        smi = ""
    after_context = non_torch()
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    (a @ a).sum().item()
    after_matmul = non_torch()
    q = torch.randn(1, 32, 2048, 128, device="cuda", dtype=torch.bfloat16)
    F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().item()
    after_sdpa = non_torch()
    doc = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_total_bytes": total,
        "nvidia_smi_used_total_driver": smi,
        "measured_on": time.strftime("%Y-%m-%d"),
        "non_torch_after_context_bytes": after_context,
        "non_torch_after_first_bf16_matmul_bytes": after_matmul,
        "non_torch_after_first_sdpa_bytes": after_sdpa,
        "torch_reserved_bytes": torch.cuda.memory_reserved(),
        "note": baseline_used_by_others,
    }
    print(json.dumps(doc, indent=1))
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
