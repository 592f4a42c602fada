"""Hostile inputs of issue 13 (items 2 and 10): time, peak memory and answer, before and after the fix.

    python benchmarks/hostile_bench.py [--before SRC] [--timeout 20] [--out benchmarks/results/hostile.md]

Each attack runs in a fresh subprocess (``PYTHONPATH=SRC``) that builds its input, then times only the
call and reports its peak RSS; a call still running at ``--timeout`` seconds is killed and shown as
``> T s`` with the peak RSS seen so far (read from /proc). ``--before`` points at the source tree of
the code before the fix (e.g. ``git archive a857127 src | tar -x -C /tmp/before``); without it only the
current tree is measured. Pasted logs go through ``explain_log`` as ``/api/explain`` calls it; files
through ``load_model`` / ``read_safetensors`` as the CLI does; command-line integers through ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VLLM = "INFO 01-01 00:00:00 [api_server.py:1] vLLM API server version 0.10.0\\n"
#: name -> (input, what the issue reported, child code: builds ``payload`` and calls ``run()``)
LOG_ATTACKS = {
    "digits + figure phrase": (
        "1.5 KB",
        "45 s",
        f"text = '{VLLM}' + '7' * 1500 + ' for CUDAGraph memory\\n'",
    ),
    "TGI `Args { a: Some(` nesting": (
        "2 MB",
        "40 min, CPU kept burning",
        "text = 'text_generation_launcher: Args { ' + 'a: Some(' * 250_000 + '\\n'",
    ),
    "`ERROR ` run": ("200 KB", "12 s", f"text = '{VLLM}' + 'ERROR ' * 34_000 + '\\n'"),
    "`vllm serve ... \\` continuation lines": (
        "2 MB",
        "125 s",
        "text = 'vllm serve m --max-num-seqs 2 \\\\\\n' * 66_000",
    ),
    "blank run (Ray suffix pattern)": ("2 MB", "-", f"text = '{VLLM}' + ' ' * 2_000_000 + 'x\\n'"),
    "`llama_kv_cache` repeated": (
        "2 MB",
        "-",
        "text = 'llama_kv_cache' * 150_000 + '\\n'",
    ),
    "many short lines": ("2 MB", "-", f"text = '{VLLM}' + 'x\\n' * 1_000_000"),
}
EXPLAIN = """
from vramplan.explain import explain_log
import inspect
kw = {'allow_paths': False} if 'allow_paths' in inspect.signature(explain_log).parameters else {}
def run():
    return explain_log(text, **kw)
"""

FILE_ATTACKS = {
    "GGUF with 2^20 tensors": (
        "40 MB",
        "120 s, 5.2 GB",
        "from vramplan.model.load import load_model\ndef run(): return load_model(DIR + '/tensors.gguf')",
    ),
    "GGUF with 2^20 metadata entries": (
        "24 MB",
        "70 s, 3.4 GB",
        "from vramplan.model.load import load_model\ndef run(): return load_model(DIR + '/kv.gguf')",
    ),
    "safetensors index, 1M entries": (
        "31 MB",
        "quadratic",
        "from vramplan.model.files import read_safetensors\n"
        "def run(): return read_safetensors(DIR + '/idx/model.safetensors.index.json')",
    ),
    "FIFO named `x.gguf`": (
        "-",
        "hangs forever",
        "from vramplan.model.load import load_model\ndef run(): return load_model(DIR + '/x.gguf')",
    ),
    "5,000-digit integer in config.json": (
        "5 KB",
        "Python's 'Exceeds the limit' text",
        "from vramplan.model.load import load_model\ndef run(): return load_model(DIR + '/big')",
    ),
    "5,000-digit integer on the command line": (
        "`vllm --max-model-len`",
        "Python's own error text",
        "from vramplan.cli import main\n"
        "def run(): main(['vllm', 'llama-3.1-8b', '--gpu', 'H100', '--max-model-len', '7' * 5000])",
    ),
}

CHILD = """
import json, resource, sys, time, io, contextlib
DIR = {dir!r}
{setup}
err = io.StringIO()
start = time.perf_counter()
try:
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        run()
    outcome = 'answered'
except SystemExit:
    outcome = 'refused: ' + err.getvalue().strip().splitlines()[0] if err.getvalue().strip() else 'exit'
except Exception as exc:
    outcome = type(exc).__name__ + ': ' + str(exc).splitlines()[0]
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork+exec
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]
rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{'seconds': seconds, 'rss_mib': rss, 'outcome': outcome}}))
"""


def make_files(folder: Path) -> None:
    """The hostile files of item 10 (generated, not committed: 100 MB in all)."""

    def s(b: bytes) -> bytes:
        return struct.pack("<Q", len(b)) + b

    n = 1 << 20
    arch = s(b"general.architecture") + struct.pack("<I", 8) + s(b"llama")
    tensor = struct.pack("<IQIQ", 1, 32, 0, 0)
    with open(folder / "tensors.gguf", "wb") as fh:
        fh.write(b"GGUF" + struct.pack("<IQQ", 3, n, 1) + arch)
        fh.write(b"".join(s(b"t%07d" % i) + tensor for i in range(n)))
    with open(folder / "kv.gguf", "wb") as fh:
        fh.write(b"GGUF" + struct.pack("<IQQ", 3, 0, n))
        fh.write(b"".join(s(b"k%07d" % i) + struct.pack("<II", 4, 1) for i in range(n)))
    (folder / "idx").mkdir(exist_ok=True)
    weight_map = {f"t{i}": f"s{i}.safetensors" for i in range(1_000_000)}
    (folder / "idx" / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    if not (folder / "x.gguf").exists():
        os.mkfifo(folder / "x.gguf")
    (folder / "big").mkdir(exist_ok=True)
    (folder / "big" / "config.json").write_text(
        '{"model_type": "llama", "hidden_size": ' + "7" * 5000 + ', "num_attention_heads": 8, '
        '"num_hidden_layers": 2, "vocab_size": 100}'
    )


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(src: str, setup: str, folder: Path, timeout: float) -> dict[str, object]:
    """Run one attack in a child process; kill it at ``timeout`` seconds of the call."""
    code = CHILD.format(dir=str(folder), setup=setup)
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    start = time.monotonic()
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _vm_hwm_mib(proc.pid) or 0.0)
        if time.monotonic() - start > timeout + 15:  # imports and input building are not timed
            proc.kill()
            proc.wait()
            return {
                "seconds": None,
                "rss_mib": peak,
                "outcome": f"still running at {timeout:.0f} s",
            }
        time.sleep(0.1)
    out, err = proc.communicate()
    try:
        result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"seconds": None, "rss_mib": peak, "outcome": "crashed: " + err.strip()[-200:]}
    if float(result["seconds"]) > timeout:  # type: ignore[arg-type]
        result["outcome"] = f"(over the {timeout:.0f} s budget) " + str(result["outcome"])
    return result


def _short(outcome: str, width: int = 110) -> str:
    """An answer cut for a table cell."""
    if "does not look like a serving-engine startup log" in outcome:
        return "refused: not a startup log (FileFormatError)"
    if outcome.startswith("still running"):
        return "-"
    cut = outcome if len(outcome) <= width else outcome[: width - 3] + "..."
    return cut.replace("|", "\\|")


def _time(r: dict[str, object], timeout: float) -> str:
    if r["seconds"] is None:
        return f"> {timeout:.0f} s (killed)"
    return f"{float(r['seconds']):.2f} s"  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", help="source tree (its src/ folder) of the code before the fix")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hostile.md"))
    args = ap.parse_args()
    trees = {"after": str(ROOT / "src")}
    if args.before:
        trees = {"before": args.before, **trees}
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_files(folder)
        attacks = [(k, *v, EXPLAIN) for k, v in LOG_ATTACKS.items()]
        attacks += [(k, *v, "") for k, v in FILE_ATTACKS.items()]
        for name, size, reported, setup, runner in attacks:
            got = {
                label: measure(src, setup + runner, folder, args.timeout)
                for label, src in trees.items()
            }
            after = got["after"]
            before = got.get("before")
            cells = [name, size, reported]
            if before:
                cells += [
                    f"{_time(before, args.timeout)}, {float(before['rss_mib']):.0f} MiB",  # type: ignore[arg-type]
                    _short(str(before["outcome"]).replace(tmp, "DIR"), 70),
                ]
            cells += [
                _time(after, args.timeout),
                f"{float(after['rss_mib']):.0f} MiB",  # type: ignore[arg-type]
                _short(str(after["outcome"]).replace(tmp, "DIR")),
            ]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    header = [
        "# Hostile inputs (issue 13, items 2 and 10)",
        "",
        f"`python benchmarks/hostile_bench.py{' --before SRC' if args.before else ''}` on "
        f"{platform.node() or 'this machine'} ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end (a shared "
        "machine: wall times of a loaded machine). Each call in a fresh process; time of the call only; "
        "peak RSS of the whole process (VmHWM, Python and imports included: ~18-25 MiB at rest). Calls "
        f"still running after {args.timeout:.0f} s are killed (peak RSS then is the peak seen so far). "
        f"{'Before: the tree at commit a857127. ' if args.before else ''}"
        "An exception class in an answer means the caller got that error (one line in the CLI) or, "
        "for `OverflowError`, a traceback.",
        "",
    ]
    columns = ["attack", "input", "reported in issue 13"]
    if args.before:
        columns += ["before (time, peak RSS)", "before: answer"]
    columns += ["after", "after peak RSS", "after: answer"]
    header += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    Path(args.out).write_text("\n".join(header + rows) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
