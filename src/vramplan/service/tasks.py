"""Imported once by the worker forkserver: the library modules the worker calls, loaded warm.

The functions a worker runs are the plain ``service.compute`` ones; this module only makes sure
their imports are paid once, not per worker or per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import vramplan.estimator
import vramplan.explain
import vramplan.planner
import vramplan.service.compute
import vramplan.simulate.run
import vramplan.training


def rendered(fn: Callable[..., Any], *args: Any) -> bytes:
    """``fn(*args)`` as the JSON bytes the route sends (rendered in the worker, not the server)."""
    return vramplan.service.compute.render(fn(*args))
