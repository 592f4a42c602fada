"""Cost of the generic meta-device path (no native builder): a 70B-class config counted by building
transformers' class on the meta device, in a fresh process, plus the warm (cached by config hash) cost and
the native path for the same config.

    python benchmarks/generic_bench.py

Runs each cold measurement in a child process (imports included, as a CLI call pays them) and records wall
seconds, CPU seconds and peak RSS. Writes benchmarks/results/generic_speed.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "src" / "vramplan" / "model" / "catalog" / "meta-llama__Llama-3.1-70B.json"
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from vramplan.model import generic
from vramplan.model.params import count_params
raw = json.load(open(sys.argv[1]))
spec = generic.generic_builder(raw, raw["model_type"], "bench")
cold = time.perf_counter() - t0; cpu = time.process_time() - c0
t1 = time.perf_counter()
for _ in range(100):
    generic.generic_builder(raw, raw["model_type"], "bench")
warm = (time.perf_counter() - t1) / 100
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(cold_s=cold, cpu_s=cpu, warm_s=warm, rss=rss, params=count_params(spec).total)))
"""


def main() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(CONFIG)], capture_output=True, text=True, check=True
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    from vramplan.model.hf_config import spec_from_config
    from vramplan.model.params import count_params

    raw = json.loads(CONFIG.read_text())
    t0 = time.perf_counter()
    for _ in range(1000):
        spec_from_config(raw)
    native = (time.perf_counter() - t0) / 1000
    assert count_params(spec_from_config(raw)).total == r["params"], (
        "generic and native counts differ"
    )
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    lines = [
        "# Generic meta-device path: cost",
        "",
        f"Config: {CONFIG.name} ({r['params']:,} parameters; generic count equals the native count).",
        f"Machine load average at the run: {load} (shared 2-core box: wall time inflates with load; CPU time does not).",
        "",
        "| path | wall | CPU | peak RSS |",
        "|---|---|---|---|",
        f"| generic, cold process (torch + transformers imports + meta build) | {r['cold_s']:.2f} s | "
        f"{r['cpu_s']:.2f} s | {r['rss'] / 2**30:.2f} GiB |",
        f"| generic, warm (cached by config hash) | {r['warm_s'] * 1e6:.0f} µs | | |",
        f"| native builder (spec_from_config) | {native * 1e6:.0f} µs | | |",
        "",
        "Targets: ≤10 s and ≤2 GiB for a 70B-class config on the generic path.",
    ]
    path = ROOT / "benchmarks" / "results" / "generic_speed.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
