"""Metrics for every service: prometheus-client underneath, statsd beside it.

``Registry`` declares metrics on first use (name, labels, help), so the
code that counts says what it counts in one line; each service has its own
registry and name prefix (``gatekeeper_pool_``, ``gatekeeper_scheduler_``,
``gatekeeper_web_``). ``statsd_client`` is the maintained ``statsd``
package's UDP client (fire and forget: metrics never break a service)."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import prometheus_client
import statsd as statsd_pkg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

prometheus_client.disable_created_metrics()  # no *_created series: dashboards do not use them

Labels = tuple[tuple[str, str], ...]
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))


def _key(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


class Registry:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _metric(self, cls: Any, name: str, labelnames: tuple[str, ...], help_text: str,
                **kw: Any) -> Any:
        with self._lock:
            m = self._metrics.get(name)
            if m is None:
                m = cls(self.prefix + name, help_text or name.replace("_", " "),
                        labelnames=labelnames, registry=self.registry, **kw)
                self._metrics[name] = m
            elif not isinstance(m, cls):
                raise ValueError(f"metric {name} is a {type(m).__name__}, not a {cls.__name__}")
            return m

    @staticmethod
    def _child(metric: Any, key: Labels) -> Any:
        return metric.labels(**dict(key)) if key else metric

    def inc(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0,
            help_text: str = "") -> None:
        key = _key(labels)
        m = self._metric(Counter, name, tuple(k for k, _ in key), help_text)
        self._child(m, key).inc(value)

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None,
            help_text: str = "") -> None:
        key = _key(labels)
        m = self._metric(Gauge, name, tuple(k for k, _ in key), help_text)
        self._child(m, key).set(value)

    def set_gauges(self, name: str, values: Mapping[Labels, float], help_text: str = "",
                   labelnames: tuple[str, ...] | None = None) -> None:
        """Replace every series of gauge ``name`` (series not given disappear)."""
        keys = [tuple(sorted(k)) for k in values]
        names = labelnames or (tuple(k for k, _ in keys[0]) if keys else None)
        if names is None and name not in self._metrics:
            return  # nothing to say yet, and no label names to declare it with
        m = self._metric(Gauge, name, names or (), help_text)
        m.clear()
        for key, v in zip(keys, values.values(), strict=True):
            self._child(m, key).set(v)

    def observe(self, name: str, seconds: float, labels: Mapping[str, str] | None = None,
                help_text: str = "", buckets: tuple[float, ...] | None = None) -> None:
        """A Summary (count + sum), or a Histogram when ``buckets`` are given."""
        key = _key(labels)
        names = tuple(k for k, _ in key)
        if buckets:
            m = self._metric(Histogram, name, names, help_text, buckets=buckets)
        else:
            m = self._metric(Summary, name, names, help_text)
        self._child(m, key).observe(seconds)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A counter's or gauge's value, a summary's count (0 when absent)."""
        full = self.prefix + name
        lab = dict(labels or {})
        for sample in (full, full + "_count"):
            v = self.registry.get_sample_value(sample, lab)
            if v is not None:
                return v
        return 0.0

    def render(self) -> str:
        return prometheus_client.generate_latest(self.registry).decode()


_STATSD_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def statsd_key(*parts: str) -> str:
    """A statsd name from parts (each cleaned of what statsd cannot carry)."""
    return ".".join(_STATSD_BAD.sub("_", p) for p in parts if p)


def statsd_client(hostport: tuple[str, int] | None, prefix: str) -> Any:
    if hostport is None:
        return None
    host, port = hostport
    return statsd_pkg.StatsClient(host, port, prefix=prefix or None)


def serve(registry: Registry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """``/metrics`` of ``registry`` on ``host``:``port`` (0: any free port)."""
    return prometheus_client.start_http_server(port, host, registry.registry)
