"""Property-based API fuzzing with schemathesis against the live OpenAPI spec: no 5xx, responses match.

CI-sized by default (VRAMPLAN_FUZZ_EXAMPLES, default 30 per operation); the long run is
``VRAMPLAN_FUZZ_EXAMPLES=800 pytest tests/service/test_schemathesis.py`` (about 10,000 requests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ST = shutil.which("st") or str(Path(sys.executable).with_name("st"))
if not Path(ST).exists():
    pytest.skip("schemathesis is not installed (pip install schemathesis)", allow_module_level=True)


@pytest.mark.slow
def test_fuzz_no_server_errors_and_schema_conformance(spawn, tmp_path) -> None:
    # Small simulation bounds keep random /api/simulate bodies fast; the bounds themselves answer 400.
    server = spawn(
        f"sqlite:///{tmp_path / 'fuzz.db'}",
        VRAMPLAN_SIMULATE_MAX_DURATION_S="5",
        VRAMPLAN_SIMULATE_MAX_REQUESTS="100",
        VRAMPLAN_SIMULATE_MAX_WALL_S="1",
    )
    examples = os.environ.get("VRAMPLAN_FUZZ_EXAMPLES", "30")
    cmd = [
        ST,
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance",
        "--max-examples",
        examples,
        "--mode",
        "all",
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--workers",
        "2",
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"}
    )
    assert result.returncode == 0, (
        result.stdout[-6000:] + result.stderr[-2000:] + server.log.read_text()[-3000:]
    )
