"""Pool metrics: a small Prometheus registry and an optional statsd sender.

Prometheus text exposition (format 0.0.4) of gauges, counters and summaries
(count + sum), served on a loopback port by :class:`MetricsHTTPServer`.
statsd (off by default) gets nodepool-style names, e.g.
``nodepool.launch.provider.cloud-a.ready`` and ``nodepool.nodes.ready``."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("gatekeeper.nodes.metrics")

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Registry:
    """Thread-safe metric values; ``render()`` gives the exposition text."""

    def __init__(self, prefix: str = "gatekeeper_pool_"):
        self.prefix = prefix
        self._lock = threading.Lock()
        self._types: dict[str, str] = {}
        self._help: dict[str, str] = {}
        self._values: dict[str, dict[Labels, float]] = {}
        self._sums: dict[str, dict[Labels, float]] = {}

    def _declare(self, name: str, kind: str, help_text: str) -> None:
        if self._types.setdefault(name, kind) != kind:
            raise ValueError(f"metric {name} is a {self._types[name]}, not a {kind}")
        self._help.setdefault(name, help_text)
        self._values.setdefault(name, {})

    def inc(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1.0,
            help_text: str = "") -> None:
        with self._lock:
            self._declare(name, "counter", help_text)
            key = _labels(labels)
            self._values[name][key] = self._values[name].get(key, 0.0) + value

    def set_gauges(self, name: str, values: Mapping[Labels, float], help_text: str = "") -> None:
        """Replace every series of gauge ``name`` (series not given drop to absent)."""
        with self._lock:
            self._declare(name, "gauge", help_text)
            self._values[name] = dict(values)

    def observe(self, name: str, seconds: float, labels: Mapping[str, str] | None = None,
                help_text: str = "") -> None:
        with self._lock:
            self._declare(name, "summary", help_text)
            key = _labels(labels)
            self._values[name][key] = self._values[name].get(key, 0.0) + 1
            sums = self._sums.setdefault(name, {})
            sums[key] = sums.get(key, 0.0) + seconds

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            for name in sorted(self._types):
                full = self.prefix + name
                kind = self._types[name]
                if self._help[name]:
                    out.append(f"# HELP {full} {self._help[name]}")
                out.append(f"# TYPE {full} {kind}")
                for key, v in sorted(self._values[name].items()):
                    if kind == "summary":
                        out.append(f"{full}_count{_fmt(key)} {v:g}")
                        out.append(f"{full}_sum{_fmt(key)} {self._sums[name][key]:.6f}")
                    else:
                        out.append(f"{full}{_fmt(key)} {v:g}")
        return "\n".join(out) + "\n"


def _fmt(key: Labels) -> str:
    if not key:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in key) + "}"


_STATSD_BAD = re.compile(r"[^A-Za-z0-9_.-]")


class Statsd:
    """Fire-and-forget UDP statsd client (counters ``|c``, timers ``|ms``, gauges ``|g``)."""

    def __init__(self, host: str, port: int, prefix: str = "nodepool"):
        self.addr = (host, port)
        self.prefix = prefix
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def _send(self, name: str, value: str) -> None:
        key = ".".join(_STATSD_BAD.sub("_", p) for p in (self.prefix, name) if p)
        try:
            self._sock.sendto(f"{key}:{value}".encode(), self.addr)
        except OSError as e:  # metrics never break the pool
            log.debug("statsd send failed: %s", e)

    def incr(self, name: str, n: int = 1) -> None:
        self._send(name, f"{n}|c")

    def timing(self, name: str, seconds: float) -> None:
        self._send(name, f"{int(seconds * 1000)}|ms")

    def gauge(self, name: str, value: float) -> None:
        self._send(name, f"{value:g}|g")

    def close(self) -> None:
        self._sock.close()


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
        reg = registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = reg.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("metrics http: " + fmt, *args)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host, self.port = host, int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,),
                                        name="pool-metrics", daemon=True)

    def start(self) -> MetricsHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
