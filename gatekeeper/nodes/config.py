"""The ``pool:`` section of the service config: schema, checks, and wiring.

``validate_pool(pool, filename)`` returns every problem as
``FILE:LINE: pool.path: message``; ``build_pool(pool, base_dir)`` turns a
valid section into runtime objects (providers with their drivers, labels,
PoolConfig). Secrets — cloud passwords, API keys — are only ever read from
an environment variable or a file named in the config, never written in it,
and never logged: errors name the variable or file, not its content.

Example::

    pool:
      id: gk1                      # tags every server (leak detection)
      state_dir: pool              # local provider nodes live here
      hold_time: 86400             # default hold for failed builds
      max_held: 0.5                # builds hold at most this fraction of a label's nodes
      metrics: {listen: "127.0.0.1:9102", statsd: "127.0.0.1:8125"}
      labels:
        - {name: debian, image: debian-12, min_ready: 2}
        - {name: metal, min_ready: 0}          # static hosts only
      providers:
        - name: cloud-a
          driver: openstack                    # any libcloud compute driver
          region: RegionOne
          key: {env: OS_USERNAME}
          secret: {file: /etc/gatekeeper/cloud-a.secret}
          driver_args: {ex_force_auth_url: "https://keystone:5000",
                        ex_force_auth_version: 3.x_password, ex_tenant_name: ci}
          max_servers: 10
          rate: 2.0                            # API calls per second
          boot_timeout: 600
          launch_retries: 3
          images:
            - name: debian-12
              base_image: "Debian 12"
              setup_script: images/debian-setup.sh   # built daily when set
              username: debian
              private_key: /etc/gatekeeper/pool_key
              key_name: gatekeeper
              min_ram: 4096
        - name: local
          driver: local                        # sshd nodes on loopback
          max_servers: 4
          images: [{name: debian-12, private_key: keys/pool_key}]
        - name: rack
          driver: static
          hosts:
            - {name: m1, host: 10.0.0.5, label: metal, private_key: keys/root,
               host_key: "ssh-ed25519 AAAA..."}
          reset: {commands: [...], expect_reboot: true}
"""

from __future__ import annotations

import logging
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from gatekeeper.errors import UserError
from gatekeeper.nodes.holdcap import DEFAULT_MAX_HELD
from gatekeeper.nodes.planner import STATIC, Timeouts
from gatekeeper.nodes.providers import BootSpec, ProviderError
from gatekeeper.nodes.providers.static import (
    DEFAULT_RESET,
    ResetCommand,
    StaticHost,
    StaticProvider,
)
from gatekeeper.nodes.runtime import Health, ImageSpec, LabelSpec, ProviderRuntime
from gatekeeper.nodes.service import PoolConfig
from gatekeeper.nodes.sshrun import ReadyCheck
from gatekeeper.yamlutil import LineDict, invalid_lines, line_for_path, located

log = logging.getLogger("gatekeeper.nodes.config")

LOCAL, STATIC_DRIVER = "local", "static"

_pos = vol.All(vol.Coerce(float), vol.Range(min=0), msg="expected a number >= 0")
_count = vol.All(int, vol.Range(min=0), msg="expected an integer >= 0")
_name = vol.All(str, vol.Length(min=1), vol.Match(r"^[A-Za-z0-9_.-]+$",
                                                  msg="expected letters, digits, . _ -"))
_secret_ref = vol.Any({vol.Exclusive("env", "src"): str, vol.Exclusive("file", "src"): str},
                      msg="expected {env: VARIABLE} or {file: PATH} (never the secret itself)")
_listen = vol.Match(r"^[^:]+:\d+$", msg="expected HOST:PORT")

IMAGE = {
    vol.Required("name"): _name,
    "base_image": str,
    "setup_script": str,
    "setup_timeout": _pos,
    "username": str,
    "private_key": str,
    "public_key": str,
    "key_name": str,
    "flavor": str,
    "min_ram": _count,
}

HOST = {
    vol.Required("name"): _name,
    vol.Required("host"): str,
    vol.Required("label"): _name,
    "port": vol.All(int, vol.Range(min=1, max=65535)),
    "username": str,
    "private_key": str,
    "host_key": str,
    "workdir": str,
}

RESET = {
    "commands": [vol.Any(str, {vol.Required("command"): str, "ignore_errors": bool},
                         msg="expected a command or {command, ignore_errors}")],
    "expect_reboot": bool,
    "command_timeout": _pos,
    "down_timeout": _pos,
    "boot_timeout": _pos,
}

PROVIDER = {
    vol.Required("name"): _name,
    vol.Required("driver"): str,
    "key": vol.Any(str, _secret_ref, msg="expected a string, {env: VAR} or {file: PATH}"),
    "secret": _secret_ref,
    "region": str,
    "driver_args": {str: vol.Any(str, int, float, bool)},
    "max_servers": _count,
    "rate": _pos,
    "list_cache": _pos,
    "boot_timeout": _pos,
    "delete_timeout": _pos,
    "launch_retries": vol.All(int, vol.Range(min=1), msg="expected an integer >= 1"),
    "images": [IMAGE],
    "hosts": [HOST],
    "reset": RESET,
    "allow_developer_keys": bool,
}

_LABEL_MAP = vol.Schema({
    vol.Required("name"): _name,
    "image": _name,
    "min_ready": _count,
    "providers": [_name],
})


def label_schema(value: Any) -> Any:
    """A label: its name alone (declared only) or a mapping."""
    if isinstance(value, str):
        return _name(value)
    return _LABEL_MAP(value)

POOL_SCHEMA = vol.Schema({
    "id": _name,
    "state_dir": str,
    "database": str,
    "hold_time": _pos,
    "max_held": vol.All(vol.Coerce(float), vol.Range(min=0, max=1),
                        msg="expected a fraction of a label's nodes (0 to 1)"),
    "tick_interval": _pos,
    "reap_interval": _pos,
    "poll_interval": _pos,
    "max_workers": vol.All(int, vol.Range(min=1)),
    "building_timeout": _pos,
    "delete_retry": _pos,
    "image_retry": _pos,
    "image_interval": _pos,
    "in_use_timeout": _pos,
    "ready_check": {"command": str, "timeout": _pos, "ping": bool},
    "metrics": {"listen": _listen, "statsd": _listen, "statsd_prefix": str},
    vol.Required("labels"): [label_schema],
    # Without providers the section only declares labels (for layout checks).
    "providers": [PROVIDER],
})


def _labels(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": lb} if isinstance(lb, str) else lb for lb in data["labels"]]


def validate_pool(pool: Any, filename: str, prefix: tuple[Any, ...] = ("pool",),
                  doc: Any = None) -> list[str]:
    """Every problem in the pool section, as ``FILE:LINE: path: message``.

    ``doc`` is the whole loaded document (a LineDict) when ``pool`` is its
    ``prefix`` part; lines are looked up there."""
    doc = doc if doc is not None else _wrap(pool, prefix)
    try:
        data = POOL_SCHEMA(pool)
    except vol.Invalid as e:
        return [m for _, m in invalid_lines(e, doc, filename, prefix, schema=POOL_SCHEMA)]
    out: list[tuple[int, str]] = []

    def err(path: list[Any], msg: str) -> None:
        full = [*prefix, *path]
        line = line_for_path(doc, full)
        out.append((line, located(filename, line, full, msg)))

    provs: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(data.get("providers", [])):
        if p["name"] in provs:
            err(["providers", i, "name"], f"duplicate provider {p['name']!r}")
        provs[p["name"]] = p
        drv = p["driver"]
        if drv == STATIC_DRIVER:
            if not p.get("hosts"):
                err(["providers", i], "a static provider needs hosts")
            for k in ("images", "max_servers"):
                if k in p:
                    err(["providers", i, k], f"{k} does not apply to a static provider")
            names = [h["name"] for h in p.get("hosts", [])]
            for j, h in enumerate(p.get("hosts", [])):
                if names.count(h["name"]) > 1:
                    err(["providers", i, "hosts", j, "name"], f"duplicate host {h['name']!r}")
        else:
            if "hosts" in p or "reset" in p:
                err(["providers", i], "hosts/reset only apply to driver: static")
            if not p.get("images"):
                err(["providers", i], "a cloud provider needs images")
            if drv != LOCAL:
                if "key" not in p:
                    err(["providers", i], "required key missing: key")
                if not _driver_known(drv):
                    err(["providers", i, "driver"], f"unknown libcloud driver {drv!r}")
                for j, img in enumerate(p.get("images", [])):
                    for k in ("base_image", "username", "private_key"):
                        if k not in img:
                            err(["providers", i, "images", j], f"required key missing: {k}")
            for j, img in enumerate(p.get("images", [])):
                if drv == LOCAL and "private_key" not in img:
                    err(["providers", i, "images", j], "required key missing: private_key")
                if drv == LOCAL and "setup_script" in img:
                    err(["providers", i, "images", j, "setup_script"],
                        "the local provider cannot snapshot images")
    labels: set[str] = set()
    for i, lb in enumerate(_labels(data)):
        if lb["name"] in labels:
            err(["labels", i, "name"], f"duplicate label {lb['name']!r}")
        labels.add(lb["name"])
        for j, pn in enumerate(lb.get("providers", [])):
            if pn not in provs:
                err(["labels", i, "providers", j], f"unknown provider {pn!r}")
        cands = [provs[n] for n in lb.get("providers", [])
                 if n in provs] or list(provs.values())
        serves = [p for p in cands if _serves(p, lb)]
        if not provs:
            continue  # labels only: nothing to check them against
        if not serves:
            what = f"image {lb['image']!r}" if "image" in lb else "static hosts"
            err(["labels", i], f"no provider offers {what} for label {lb['name']!r}")
        elif lb.get("min_ready") and not any(p["driver"] != STATIC_DRIVER for p in serves):
            err(["labels", i, "min_ready"], "static hosts cannot be launched; min_ready "
                                            "needs a cloud or local provider")
    for i, p in enumerate(data.get("providers", [])):
        for j, h in enumerate(p.get("hosts", [])):
            if h["label"] not in labels:
                err(["providers", i, "hosts", j, "label"], f"unknown label {h['label']!r}")
    out.sort(key=lambda t: t[0])
    return [m for _, m in out]


def _serves(p: dict[str, Any], lb: dict[str, Any]) -> bool:
    if p["driver"] == STATIC_DRIVER:
        return any(h["label"] == lb["name"] for h in p.get("hosts", []))
    return "image" in lb and any(i["name"] == lb["image"] for i in p.get("images", []))


def _driver_known(name: str) -> bool:
    from libcloud.compute.providers import get_driver

    from gatekeeper.nodes import fakecloud

    if name == fakecloud.PROVIDER_NAME:
        return True
    try:
        get_driver(name)
    except (AttributeError, ImportError):
        return False
    return True


def _wrap(pool: Any, prefix: tuple[Any, ...]) -> Any:
    """A document holding ``pool`` at ``prefix``, keeping its line numbers."""
    doc: Any = pool
    for key in reversed(prefix):
        outer = LineDict({key: doc})
        outer.line = getattr(doc, "line", 1)
        outer.lines[key] = max(1, outer.line - 1) if isinstance(doc, LineDict) else outer.line
        doc = outer
    return doc


# -- building the runtime ---------------------------------------------------

@dataclass
class PoolSetup:
    """Everything ``gatekeeper pool`` needs, built from the section."""

    config: PoolConfig
    ready_check: ReadyCheck
    database: str | None  # pool.database override, else the service's database
    metrics_listen: tuple[str, int] | None = None
    statsd: tuple[str, int] | None = None
    statsd_prefix: str = "nodepool"
    local_providers: list[Any] = field(default_factory=list)


def read_secret(ref: Any, what: str, env: dict[str, str] | os._Environ[str]) -> str:
    """The value behind ``{env: VAR}`` / ``{file: PATH}`` (or a plain string)."""
    if isinstance(ref, str):
        return ref
    if "env" in ref:
        value = env.get(ref["env"])
        if not value:
            raise UserError(f"{what}: environment variable {ref['env']} is not set")
        return value
    try:
        return Path(ref["file"]).read_text().strip()
    except OSError as e:
        raise UserError(f"{what}: cannot read {ref['file']}: {e.strerror}") from None


def build_pool(pool: dict[str, Any], base_dir: str, state_dir: str,
               env: dict[str, str] | os._Environ[str] = os.environ) -> PoolSetup:
    """Runtime objects for a *validated* pool section."""
    from gatekeeper.nodes import fakecloud
    from gatekeeper.nodes.providers.cloud import LibcloudProvider
    from gatekeeper.nodes.providers.local import LocalProvider

    def rel(p: str | None) -> str | None:
        return p if p is None else os.path.normpath(os.path.join(base_dir, os.path.expanduser(p)))

    data = POOL_SCHEMA(pool)
    if not data.get("providers"):
        raise UserError("pool: no providers configured (pool.providers)")
    pool_state = rel(data.get("state_dir")) or os.path.join(state_dir, "pool")
    rc = data.get("ready_check", {})
    ready_check = ReadyCheck(rc.get("command", "true"), rc.get("timeout", 10.0),
                             rc.get("ping", False))
    me = pwd.getpwuid(os.getuid()).pw_name
    providers: dict[str, ProviderRuntime] = {}
    local: list[Any] = []
    for p in data["providers"]:
        name, drv = p["name"], p["driver"]
        if drv == STATIC_DRIVER:
            r = p.get("reset", {})
            cmds = tuple(ResetCommand(c) if isinstance(c, str) else
                         ResetCommand(c["command"], c.get("ignore_errors", False))
                         for c in r.get("commands", [])) or DEFAULT_RESET
            hosts = tuple(StaticHost(h["name"], h["host"], h["label"], h.get("port", 22),
                                     h.get("username", "root"), rel(h.get("private_key")) or "",
                                     h.get("host_key"), h.get("workdir", ""))
                          for h in p["hosts"])
            static = StaticProvider(name, hosts, cmds, r.get("expect_reboot", True),
                                    r.get("command_timeout", 300.0),
                                    r.get("down_timeout", 120.0), r.get("boot_timeout", 600.0),
                                    ready_check=ready_check)
            providers[name] = ProviderRuntime(name, STATIC, static=static,
                                              max_servers=len(hosts))
            continue
        images = {}
        for i in p["images"]:
            key = rel(i.get("private_key")) or ""
            pub = i.get("public_key")
            boot = BootSpec(i["name"], i.get("base_image", ""), i.get("username", me), key,
                            i.get("flavor"), i.get("min_ram", 0), i.get("key_name"),
                            Path(rel(pub) or "").read_text().strip() if pub else None)
            images[i["name"]] = ImageSpec(i["name"], boot, rel(i.get("setup_script")),
                                          i.get("setup_timeout", 3600.0))
        if drv == LOCAL:
            api: Any = LocalProvider(name, Path(pool_state) / "local" / name)
            local.append(api)
        else:
            if drv == fakecloud.PROVIDER_NAME:
                fakecloud.register()
            key = read_secret(p["key"], f"pool provider {name}: key", env)
            secret = read_secret(p["secret"], f"pool provider {name}: secret", env) \
                if "secret" in p else None
            try:
                api = LibcloudProvider(name, drv, key, secret, p.get("region"),
                                       p.get("driver_args"), p.get("rate", 0.0),
                                       list_cache=p.get("list_cache", 5.0))
            except ProviderError as e:
                raise UserError(f"pool provider {name}: {e}") from None
        providers[name] = ProviderRuntime(
            name, api=api, max_servers=p.get("max_servers", 10),
            boot_timeout=p.get("boot_timeout", 600.0),
            launch_retries=p.get("launch_retries", 3),
            delete_timeout=p.get("delete_timeout", 600.0), images=images, health=Health())
    labels = {lb["name"]: LabelSpec(lb["name"], lb.get("image", ""), lb.get("min_ready", 0),
                                    tuple(lb.get("providers", ())))
              for lb in _labels(data)}
    timeouts = Timeouts(building=data.get("building_timeout", 3600.0),
                        delete_retry=data.get("delete_retry", 60.0),
                        image_retry=data.get("image_retry", 3600.0),
                        image_interval=data.get("image_interval", 86400.0),
                        in_use=data.get("in_use_timeout", 2 * 86400.0))
    cfg = PoolConfig(data.get("id", "gatekeeper"), providers, labels, timeouts,
                     hold_time=data.get("hold_time", 86400.0),
                     max_held=data.get("max_held", DEFAULT_MAX_HELD),
                     no_developer_keys=frozenset(p["name"] for p in data["providers"]
                                                 if p.get("allow_developer_keys") is False),
                     tick_interval=data.get("tick_interval", 1.0),
                     reap_interval=data.get("reap_interval", 60.0),
                     poll=data.get("poll_interval", 1.0),
                     max_workers=data.get("max_workers", 16))
    m = data.get("metrics", {})
    return PoolSetup(cfg, ready_check, data.get("database"),
                     _hostport(m["listen"]) if "listen" in m else None,
                     _hostport(m["statsd"]) if "statsd" in m else None,
                     m.get("statsd_prefix", "nodepool"), local)


def _hostport(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host, int(port)
