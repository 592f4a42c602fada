"""Prometheus metrics, one registry per app so tests can build many apps in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Requests by route and status, latency by route, estimates computed and plans saved."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "vramplan_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        # Buckets around the p99 < 20 ms target, then up to a slow simulation.
        self.latency = Histogram(
            "vramplan_http_request_duration_seconds",
            "Request latency by route template.",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.estimates = Counter(
            "vramplan_estimates_computed",
            "Estimates computed (cache misses included, hits too).",
            ["cached"],
            registry=self.registry,
        )
        self.plans_saved = Counter(
            "vramplan_plans_saved", "Plans saved to the store.", ["kind"], registry=self.registry
        )
        self.rate_limited = Counter(
            "vramplan_rate_limited", "Requests refused with 429.", registry=self.registry
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
