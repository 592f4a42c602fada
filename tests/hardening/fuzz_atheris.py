"""On-demand coverage-guided fuzzing with atheris (not collected by pytest: no test_ prefix).

    pip install atheris
    python tests/hardening/fuzz_atheris.py safetensors -atheris_runs=200000
    python tests/hardening/fuzz_atheris.py gguf -max_total_time=600 tests/data/hostile
    targets: safetensors, gguf, config, log, size, vllm_args

Any exception that is not a vramplan error is a crash; atheris saves the input as crash-<sha>.
Only vramplan.errors classes may escape the readers.
"""

from __future__ import annotations

import os
import sys
import tempfile

TARGETS = ("safetensors", "gguf", "config", "log", "size", "vllm_args")


def _make_target(name: str):
    from vramplan.errors import VramplanError

    scratch = tempfile.mkdtemp(prefix="vramplan-atheris-")
    suffix = {"safetensors": ".safetensors", "gguf": ".gguf", "config": ".json"}.get(name, "")
    path = os.path.join(scratch, "input" + suffix)

    def one(data: bytes) -> None:
        try:
            if name in ("safetensors", "gguf", "config"):
                with open(path, "wb") as fh:
                    fh.write(data)
                if name == "safetensors":
                    from vramplan.model.files import read_safetensors

                    read_safetensors(path)
                elif name == "gguf":
                    from vramplan.model.files import read_gguf

                    read_gguf(path)
                else:
                    from vramplan.estimator import estimate
                    from vramplan.model.hf_config import load_config_file, spec_from_config

                    estimate(spec_from_config(load_config_file(path)))
            elif name == "log":
                from vramplan.logs.parse import parse_log

                parse_log(data.decode("utf-8", errors="replace"))
            elif name == "size":
                from vramplan.units import parse_count, parse_size

                text = data.decode("utf-8", errors="replace")
                for fn in (parse_size, parse_count):
                    try:
                        fn(text)
                    except VramplanError:
                        pass
            elif name == "vllm_args":
                from vramplan.engines.vllm_args import parse_vllm_args

                parse_vllm_args(data.decode("utf-8", errors="replace").split())
        except VramplanError:
            pass

    return one


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]")
    try:
        import atheris
    except ImportError:
        sys.exit(
            "atheris is not installed: pip install atheris (needs clang/libFuzzer on some platforms)"
        )
    target = sys.argv.pop(1)
    with atheris.instrument_imports():
        import vramplan.engines.vllm_args
        import vramplan.logs.parse
        import vramplan.model.files
        import vramplan.model.hf_config
        import vramplan.units  # noqa: F401
    atheris.Setup(sys.argv, _make_target(target))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
