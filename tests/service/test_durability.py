"""SIGKILL the server while plans are being saved: every plan whose save returned 201 is there after restart."""

from __future__ import annotations

import signal
import threading
import time

import httpx


def test_sigkill_keeps_every_acknowledged_plan(spawn, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    server = spawn(url)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = client.post(
                        "/api/plans",
                        json={
                            "name": f"w{n}-{i}",
                            "kind": "estimate",
                            "scenario": {"model": "opt-125m"},
                            "result": {"i": i},
                        },
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: this save was never acknowledged
                if r.status_code == 201:
                    with lock:
                        acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) >= 40, "the writers saved too little before the kill to test anything"
    restarted = spawn(url)
    missing = [
        pid
        for pid in acknowledged
        if httpx.get(f"{restarted.url}/api/plans/{pid}").status_code != 200
    ]
    assert not missing, (
        f"{len(missing)} of {len(acknowledged)} acknowledged plans lost: {missing[:5]}"
    )
