"""The pool's runtime view of its configuration: providers, images, labels,
and each provider's health (back-off after errors or a quota refusal)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gatekeeper.nodes.planner import CLOUD, STATIC, LabelView, ProviderView
from gatekeeper.nodes.providers import BootSpec, CloudAPI
from gatekeeper.nodes.providers.static import StaticProvider


@dataclass(frozen=True)
class ImageSpec:
    """An image on one provider. With a ``setup_script`` it is rebuilt every
    ``image_interval`` (a day; boot ``boot.base_image``, run the script,
    snapshot); without one, nodes boot the base image directly."""

    name: str
    boot: BootSpec
    setup_script: str | None = None  # path to the script (run with bash -s)
    setup_timeout: float = 3600.0


@dataclass
class Health:
    """Consecutive failures put a provider on back-off, so launches go to
    the others; a quota refusal does at once."""

    threshold: int = 3
    base: float = 10.0
    cap: float = 600.0
    failures: int = 0
    backoff_until: float = 0.0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def healthy(self, now: float) -> bool:
        return now >= self.backoff_until

    def success(self) -> None:
        with self._lock:
            self.failures = 0
            self.backoff_until = 0.0

    def failure(self, now: float, kind: str, message: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = message
            if kind == "quota" or self.failures >= self.threshold:
                n = max(0, self.failures - self.threshold)
                self.backoff_until = now + min(self.cap, self.base * 2 ** n)


@dataclass
class ProviderRuntime:
    name: str
    kind: str = CLOUD  # cloud | static
    api: CloudAPI | None = None
    static: StaticProvider | None = None
    max_servers: int = 10
    boot_timeout: float = 600.0
    launch_retries: int = 3
    delete_timeout: float = 600.0
    images: dict[str, ImageSpec] = field(default_factory=dict)
    health: Health = field(default_factory=Health)

    def view(self, now: float) -> ProviderView:
        if self.kind == STATIC:
            assert self.static is not None
            labels = tuple(sorted({h.label for h in self.static.hosts}))
            return ProviderView(self.name, STATIC, len(self.static.hosts), True, labels, ())
        return ProviderView(
            self.name, CLOUD, self.max_servers, self.health.healthy(now),
            tuple(sorted(self.images)),
            tuple(sorted(n for n, i in self.images.items() if i.setup_script)))


@dataclass(frozen=True)
class LabelSpec:
    name: str
    image: str
    min_ready: int = 0
    providers: tuple[str, ...] = ()

    def view(self) -> LabelView:
        return LabelView(self.name, self.image, self.min_ready, self.providers)
