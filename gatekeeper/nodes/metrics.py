"""Pool metrics: prometheus-client (``gatekeeper.metrics.registry``) and statsd.

Prometheus series ``gatekeeper_pool_*``, served on a loopback port by
:class:`MetricsHTTPServer`. statsd (off by default) gets nodepool-style
names, e.g. ``nodepool.launch.provider.cloud-a.ready`` and
``nodepool.nodes.ready``, through the ``statsd`` package's client."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gatekeeper.metrics import registry as metrics_registry
from gatekeeper.metrics.registry import statsd_key

log = logging.getLogger("gatekeeper.nodes.metrics")

Labels = metrics_registry.Labels


class Registry(metrics_registry.Registry):
    def __init__(self, prefix: str = "gatekeeper_pool_"):
        super().__init__(prefix)


class Statsd:
    """statsd counters, timers (seconds in, milliseconds out) and gauges."""

    def __init__(self, host: str, port: int, prefix: str = "nodepool"):
        self.addr = (host, port)
        self.prefix = prefix
        self._client: Any = metrics_registry.statsd_client((host, port), prefix)

    def incr(self, name: str, n: int = 1) -> None:
        self._client.incr(statsd_key(name), n)

    def timing(self, name: str, seconds: float) -> None:
        self._client.timing(statsd_key(name), int(seconds * 1000))

    def gauge(self, name: str, value: float) -> None:
        self._client.gauge(statsd_key(name), value)

    def close(self) -> None:
        self._client.close()


class PoolMetrics:
    """What the pool reports, to Prometheus and (optionally) statsd."""

    def __init__(self, registry: Registry | None = None, statsd: Statsd | None = None):
        self.registry = registry or Registry()
        self.statsd = statsd

    def launch(self, provider: str, label: str, result: str, seconds: float | None = None
               ) -> None:
        """``result``: ready, error.quota, error.boot-timeout, error.ready-check, ..."""
        self.registry.inc("launches_total", {"provider": provider, "label": label,
                                             "result": result}, help_text="node launches")
        if seconds is not None and result == "ready":
            self.registry.observe("launch_seconds", seconds, {"provider": provider},
                                  help_text="time from launch to ready")
        if self.statsd:
            self.statsd.incr(f"launch.provider.{provider}.{result}")
            self.statsd.incr(f"launch.label.{label}.{result}")
            if seconds is not None and result == "ready":
                self.statsd.timing(f"launch.provider.{provider}.ready", seconds)

    def claim(self, label: str, seconds: float) -> None:
        self.registry.observe("claim_seconds", seconds, {"label": label},
                              help_text="time from claim request to node handed out")
        if self.statsd:
            self.statsd.timing(f"claim.label.{label}", seconds)

    def image_build(self, provider: str, image: str, result: str) -> None:
        self.registry.inc("image_builds_total", {"provider": provider, "image": image,
                                                 "result": result}, help_text="image builds")
        if self.statsd:
            self.statsd.incr(f"image_update.{image}.{provider}.{result}")

    def event(self, name: str, labels: Mapping[str, str]) -> None:
        """Other counters: deletes, reset results, leaks."""
        self.registry.inc(name, labels)
        if self.statsd:
            self.statsd.incr(".".join([name, *labels.values()]))

    def node_states(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """``counts``: (state, label, provider) -> number of nodes."""
        self.registry.set_gauges(
            "nodes", {(("label", lb), ("provider", p), ("state", s)): float(n)
                      for (s, lb, p), n in counts.items()},
            help_text="nodes by state, label and provider")
        if self.statsd:
            totals: dict[str, int] = {}
            for (s, _lb, _p), n in counts.items():
                totals[s] = totals.get(s, 0) + n
            for s, n in totals.items():
                self.statsd.gauge(f"nodes.{s}", n)


class MetricsHTTPServer:
    """Serves ``/metrics`` from a Registry on ``host``:``port`` (0 = any free)."""

    def __init__(self, registry: Registry, host: str = "127.0.0.1", port: int = 0):
        self.registry = registry
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> MetricsHTTPServer:
        self._server, self._thread = metrics_registry.serve(self.registry, self.host, self.port)
        self.port = int(self._server.server_address[1])
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
