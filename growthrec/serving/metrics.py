"""Prometheus metrics of the service, in a registry of its own (one per app, none global).

Per endpoint: requests by status and a latency histogram; fallbacks served and empty lists;
the model's version (an info metric) and swaps, failed ones included. The request metrics are
kept by a plain ASGI middleware, which also stamps the serving model's version on responses
that do not carry one already.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from growthrec.serving.holder import ReloadOutcome, ServedModel

__all__ = ["VERSION_HEADER", "MetricsMiddleware", "ServiceMetrics"]

#: The response header naming the model version.
VERSION_HEADER = "x-model-version"
#: Latency buckets (seconds): fine below 25 ms, where a healthy service answers.
_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class ServiceMetrics:
    """Every metric the service exports, and the endpoint names they are labelled with."""

    def __init__(self, endpoints: dict[str, str]) -> None:
        #: URL path -> endpoint label; any other path is labelled "other" (bounded labels).
        self.endpoints = endpoints
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "growthrec_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "growthrec_request_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "growthrec_fallbacks",
            "Best-seller lists given because the model could not score the customer.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.empty_lists = Counter(
            "growthrec_empty_lists",
            "Lists answered with no item (every candidate excluded).",
            ["endpoint"],
            registry=r,
        )
        self.model = Info("growthrec_model", "The model being served.", registry=r)
        self.model_loaded = Gauge(
            "growthrec_model_loaded_timestamp_seconds",
            "When the serving model was loaded (Unix time); 0 before any.",
            registry=r,
        )
        self.ready = Gauge("growthrec_ready", "1 once a model serves, else 0.", registry=r)
        self.swaps = Counter(
            "growthrec_model_swaps", "Models swapped in (the first load included).", registry=r
        )
        self.failed_swaps = Counter(
            "growthrec_model_swap_failures",
            "Model files rejected by a reload; the previous model kept serving.",
            registry=r,
        )

    def endpoint(self, path: str) -> str:
        return self.endpoints.get(path, "other")

    def record_outcome(self, outcome: ReloadOutcome, served: ServedModel | None) -> None:
        """Count a reload, and describe the model now serving."""
        if outcome.status == "failed":
            self.failed_swaps.inc()
        if outcome.status == "swapped" and served is not None:
            self.swaps.inc()
            self.model.info(
                {
                    "version": served.version,
                    "backend": served.model.backend,
                    "path": str(served.path),
                    "store_version": served.store_version or "",
                }
            )
            self.model_loaded.set(served.loaded_at)
            self.ready.set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request; adds the version header where missing."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        metrics: ServiceMetrics,
        version: Callable[[], str | None],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.version = version

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self.metrics.endpoint(scope["path"])
        status = 500
        started = time.perf_counter()

        async def send_with_version(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name == VERSION_HEADER.encode() for name, _ in headers):
                    version = self.version()
                    if version is not None:
                        headers.append((VERSION_HEADER.encode(), version.encode()))
                        message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_version)
        finally:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, str(status)).inc()
