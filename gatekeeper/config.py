"""The service configuration (etc/gatekeeper.yaml), read by every service.

``load_config(path)`` validates the file with voluptuous, reports every
problem as ``FILE:LINE: section.key: message`` (UserError), fills defaults and
returns a frozen, typed :class:`Config`. Relative paths resolve against the
directory of the config file. Secrets (the web admin token, a database
password) never appear in ``repr``/``str``. See doc/configuration.md."""

from __future__ import annotations

import base64
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import voluptuous as vol

from gatekeeper.errors import UserError
from gatekeeper.model.names import SAFE_HOST, SAFE_USER, BadName, check_git_url
from gatekeeper.nodes.holdcap import DEFAULT_MAX_HELD
from gatekeeper.worker.nodes import StaticNode
from gatekeeper.yamlutil import LineDict, invalid_lines, line_for_path, load_file, located

log = logging.getLogger("gatekeeper.config")

DEFAULT_STATE_DIR = "/var/lib/gatekeeper"


@dataclass(frozen=True)
class GerritConfig:
    server: str
    user: str
    private_key: str  # path of the private key (the key itself is never loaded here)
    port: int = 29418
    host_key_checking: bool = True
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    baseurl: str = ""  # web URL of Gerrit, for links in reports
    event_delay: float = 0.5  # seconds an event waits before it is processed


@dataclass(frozen=True)
class GearmanConfig:
    server: str = "127.0.0.1"
    port: int = 4730
    embedded: bool = True  # the scheduler runs its own gear.Server on server:port
    ssl_key: str | None = None
    ssl_cert: str | None = None
    ssl_ca: str | None = None

    @property
    def ssl(self) -> bool:
        return self.ssl_key is not None


@dataclass(frozen=True)
class SchedulerConfig:
    layout: tuple[str, ...]
    state_dir: str = DEFAULT_STATE_DIR
    status_url: str = ""  # public URL of the status page, for reports
    history_days: float = 0.0  # build history kept (days); 0 = forever
    statsd: tuple[str, int] | None = None  # where statsd metrics go (None: nowhere)
    statsd_prefix: str = "zuul"  # Zuul's names, for dashboards built for them


@dataclass(frozen=True)
class DatabaseConfig:
    url: str

    def __repr__(self) -> str:
        return f"DatabaseConfig(url={redact_url(self.url)!r})"


@dataclass(frozen=True)
class MergerConfig:
    git_dir: str
    git_user_name: str = "Gatekeeper"
    git_user_email: str = "gatekeeper@localhost"
    git_url_base: str | None = None  # where upstream repos are cloned from; None: Gerrit over SSH
    url: str | None = None  # where workers fetch prepared refs (ZUUL_URL); None: the git daemon
    publish_dir: str = ""  # bare repositories holding the published refs/gatekeeper/... refs
    git_daemon: tuple[str, int] | None = ("127.0.0.1", 9418)  # serves publish_dir; None: off
    git_private_key: str | None = None  # for an ssh:// git_url_base (default: gerrit.private_key)
    git_known_hosts: str | None = None  # its host key (default: gerrit.known_hosts)


@dataclass(frozen=True)
class WorkerConfig:
    jobs_root: str
    log_root: str
    hostname: str
    log_url: str = ""  # public base URL of log_root; empty: logs are served by the web UI
    nodes: tuple[StaticNode, ...] = ()
    git_base_url: str | None = None  # where projects outside the change set are cloned from
    executors: int | None = None  # builds at once; None: one per static node (2 with the pool)
    hold_hours: float = 24.0  # how long a failed build's node is held
    jobs_dir: str | None = None  # site job scripts, copied to WORKSPACE/.gatekeeper/jobs/
    max_held: float = DEFAULT_MAX_HELD  # failed builds hold at most this share of a label's nodes
    git_private_key: str | None = None  # private key for an ssh:// git_base_url
    git_known_hosts: str | None = None  # known_hosts with that git server's host key


@dataclass(frozen=True)
class SmtpConfig:
    server: str
    port: int = 25
    sender: str = "gatekeeper@localhost"  # config key "from": default From: of mails
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged or shown
    timeout: float = 30.0


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8001
    admin_token: str | None = field(default=None, repr=False)

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Config:
    path: str  # absolute path of the file
    gerrit: GerritConfig
    gearman: GearmanConfig
    scheduler: SchedulerConfig
    database: DatabaseConfig
    merger: MergerConfig
    worker: WorkerConfig
    web: WebConfig
    smtp: SmtpConfig | None = None  # None: no mail reports
    # Node pool settings are designed by the node-pool issue; kept as the raw
    # mapping (a LineDict, so its validator can report lines) until then.
    pool: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold cloud credentials

    @property
    def base_dir(self) -> str:
        return os.path.dirname(self.path)

    def resolve(self, path: str) -> str:
        """A path from the config made absolute (relative to the file's directory)."""
        return _resolve(self.base_dir, path)

    def known_labels(self) -> set[str]:
        """Labels some node can have: static nodes' labels and pool labels."""
        labels = {label for node in self.worker.nodes for label in node.labels}
        return labels | pool_labels(self.pool)


def pool_labels(pool: dict[str, Any]) -> set[str]:
    """Label names from ``pool.labels``: a list of names, a list of
    ``{name: ...}`` mappings (nodepool style) or a mapping keyed by name."""
    labels = pool.get("labels") if isinstance(pool, dict) else None
    if isinstance(labels, dict):
        return {str(k) for k in labels}
    out: set[str] = set()
    for item in labels if isinstance(labels, list) else []:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            out.add(item["name"])
    return out


def redact_url(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _resolve(base: str, path: str) -> str:
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise vol.Invalid("expected a TCP port (1-65535)")
    return value


def _listen(value: Any) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise vol.Invalid("expected HOST:PORT, e.g. 127.0.0.1:8001")
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise vol.Invalid(f"expected HOST:PORT, e.g. 127.0.0.1:8001, not {value!r}")
    return host, int(port)


def _days(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise vol.Invalid("expected a number of days (>= 0; 0 keeps everything)")
    return float(value)


def _nonneg_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise vol.Invalid("expected a number of seconds (>= 0)")
    return float(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise vol.Invalid("expected a URL (scheme://...)")
    return value


_str = vol.All(str, vol.Length(min=1, msg="must not be empty"))
_paths = vol.Any(_str, vol.All([_str], vol.Length(min=1)), msg="expected a path or a list of paths")

def _named(check: Any) -> Any:
    """A gatekeeper.model.names rule as a voluptuous validator."""

    def validator(value: Any) -> Any:
        try:
            return check(value)
        except BadName as e:
            raise vol.Invalid(str(e)) from None

    return vol.All(_str, validator)


def _matches(pattern: Any, what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise BadName(f"invalid {what} {value!r}: the worker's ssh refuses it")
        return value

    return _named(check)


def _host_key(value: str) -> str:
    parts = value.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise BadName("expected 'TYPE BASE64' as in known_hosts, e.g. 'ssh-ed25519 AAAA...'")
    try:
        base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise BadName("the key part is not base64") from None
    return value


def _git_base_url(value: str) -> str:
    """A git URL or a local directory (git clones from either); never ``ext::``."""
    return value if value.startswith("/") else check_git_url(value, "git URL")


STATIC_NODE = vol.Schema(
    {
        vol.Required("name"): _str,
        vol.Required("host"): _matches(SAFE_HOST, "host"),
        "port": _port,
        vol.Required("username"): _matches(SAFE_USER, "username"),
        vol.Required("private_key"): _str,
        vol.Required("labels"): vol.All([_str], vol.Length(min=1, msg="needs at least one label")),
        "provider": _str,
        "workdir": _str,
        "host_key": _named(_host_key),
    }
)

SCHEMA = vol.Schema(
    {
        vol.Required("gerrit"): {
            vol.Required("server"): _str,
            "port": _port,
            vol.Required("user"): _str,
            vol.Required("private_key"): _str,
            "host_key_checking": bool,
            "known_hosts": _str,
            "baseurl": _url,
            "event_delay": _nonneg_number,
        },
        "gearman": {
            "server": _str,
            "port": _port,
            "embedded": bool,
            "ssl_key": _str,
            "ssl_cert": _str,
            "ssl_ca": _str,
        },
        vol.Required("scheduler"): {
            vol.Required("layout"): _paths,
            "state_dir": _str,
            "status_url": _url,
            "history_days": _days,
            "statsd": _listen,
            "statsd_prefix": _str,
        },
        "database": {"url": _url},
        "merger": {
            "git_dir": _str,
            "git_user_name": _str,
            "git_user_email": _str,
            "git_url_base": _str,
            "url": _named(lambda u: check_git_url(u, "ZUUL_URL")),
            "publish_dir": _str,
            "git_daemon": vol.Any(False, _listen, msg="expected HOST:PORT or false"),
            "git_private_key": _str,
            "git_known_hosts": _str,
        },
        "worker": {
            "jobs_root": _str,
            "log_root": _str,
            "log_url": _url,
            "hostname": _str,
            "nodes": [STATIC_NODE],
            "git_base_url": _named(_git_base_url),
            "executors": vol.All(int, vol.Range(min=1, msg="must be at least 1")),
            "hold_hours": _nonneg_number,
            "jobs_dir": _str,
            "git_private_key": _str,
            "git_known_hosts": _str,
            "max_held": vol.All(vol.Coerce(float), vol.Range(min=0, max=1),
                                msg="expected a fraction of a label's nodes (0 to 1)"),
        },
        # Open until the node-pool issue defines it: any mapping is accepted.
        "pool": vol.Any(None, dict, msg="expected a mapping"),
        "web": {"listen": _listen, "admin_token": _str},
        "smtp": {
            vol.Required("server"): _str,
            "port": _port,
            "from": _str,
            "starttls": bool,
            "username": _str,
            "password": _str,
            "timeout": _nonneg_number,
        },
    }
)

# Keys written under their first names, still read: section -> {old name: name}.
ALIASES: dict[str, dict[str, str]] = {
    "gerrit": {"sshkey": "private_key"},
    "merger": {"git_ssh_key": "git_private_key"},
    "worker": {"git_ssh_key": "git_private_key"},
}


def _apply_aliases(doc: LineDict, path: str) -> list[str]:
    """Rename old keys to their names in place (keeping their lines); a
    section that gives both names is a problem."""
    problems = []
    for section, names in ALIASES.items():
        sec = doc.get(section)
        if not isinstance(sec, LineDict):
            continue
        for old, new in names.items():
            if old not in sec:
                continue
            if new in sec:
                p = [section, old]
                problems.append(located(path, sec.line_of(old), p,
                                        f"the old name of {section}.{new}; give only {new}"))
                continue
            sec.lines[new] = sec.line_of(old)
            sec[new] = sec.pop(old)
    return problems


_SECTIONS = ("gerrit", "gearman", "scheduler", "database", "merger", "worker", "pool", "web",
             "smtp")


def load_config(path: str) -> Config:
    """Load, validate and complete the service config; UserError lists every problem."""
    path = os.path.abspath(path)
    doc = load_file(path)
    if doc is None:
        raise UserError(f"{path}:1: empty config (expected sections: {', '.join(_SECTIONS)})")
    if not isinstance(doc, LineDict):
        raise UserError(f"{path}:1: expected a mapping of sections ({', '.join(_SECTIONS)})")
    aliased = _apply_aliases(doc, path)
    if aliased:
        raise UserError(aliased)
    try:
        data = SCHEMA(doc)
    except vol.Invalid as e:
        raise UserError([m for _, m in invalid_lines(e, doc, path, schema=SCHEMA)]) from None
    problems = _cross_checks(data, doc, path)
    merger = data.get("merger") or {}
    if merger.get("git_daemon") is False and not merger.get("url"):
        p = ["merger", "git_daemon"]
        problems.append(located(path, line_for_path(doc, p), p,
                                "with the git daemon off, merger.url must say where workers "
                                "fetch prepared refs from"))
    if problems:
        raise UserError(problems)
    return _build(path, data)


def _cross_checks(data: dict[str, Any], doc: LineDict, path: str) -> list[str]:
    out = []
    gearman = data.get("gearman") or {}
    ssl = [k for k in ("ssl_key", "ssl_cert", "ssl_ca") if k in gearman]
    if ssl and len(ssl) != 3:
        missing = ", ".join(k for k in ("ssl_key", "ssl_cert", "ssl_ca") if k not in gearman)
        p: list[str | int] = ["gearman", ssl[0]]
        out.append(located(path, line_for_path(doc, p), p, f"SSL needs ssl_key, ssl_cert and ssl_ca; missing {missing}"))
    names: dict[str, int] = {}
    for i, node in enumerate((data.get("worker") or {}).get("nodes") or []):
        p = ["worker", "nodes", i, "name"]
        if node["name"] in names:
            out.append(located(path, line_for_path(doc, p), p, f"duplicate node name {node['name']!r} (first on line {names[node['name']]})"))
        names.setdefault(node["name"], line_for_path(doc, p))
    return out


def _build(path: str, data: dict[str, Any]) -> Config:
    base = os.path.dirname(path)

    def rel(value: str | None) -> str | None:
        return _resolve(base, value) if value is not None else None

    g = data["gerrit"]
    gerrit = GerritConfig(
        server=g["server"],
        user=g["user"],
        private_key=rel(g["private_key"]) or "",
        port=g.get("port", 29418),
        host_key_checking=g.get("host_key_checking", True),
        known_hosts=rel(g.get("known_hosts")),
        baseurl=g.get("baseurl", f"https://{g['server']}"),
        event_delay=g.get("event_delay", 0.5),
    )
    gm = data.get("gearman") or {}
    gearman = GearmanConfig(
        server=gm.get("server", "127.0.0.1"),
        port=gm.get("port", 4730),
        embedded=gm.get("embedded", True),
        ssl_key=rel(gm.get("ssl_key")),
        ssl_cert=rel(gm.get("ssl_cert")),
        ssl_ca=rel(gm.get("ssl_ca")),
    )
    s = data["scheduler"]
    layouts = s["layout"] if isinstance(s["layout"], list) else [s["layout"]]
    state_dir = rel(s.get("state_dir", DEFAULT_STATE_DIR)) or DEFAULT_STATE_DIR
    w = data.get("web") or {}
    host, port = w.get("listen", ("127.0.0.1", 8001))
    web = WebConfig(host=host, port=port, admin_token=w.get("admin_token"))
    scheduler = SchedulerConfig(
        layout=tuple(_resolve(base, p) for p in layouts),
        state_dir=state_dir,
        status_url=s.get("status_url", f"http://{host}:{port}/"),
        history_days=float(s.get("history_days", 0.0)),
        statsd=s.get("statsd"),
        statsd_prefix=s.get("statsd_prefix", "zuul"),
    )
    db_url = (data.get("database") or {}).get("url", f"sqlite:///{state_dir}/gatekeeper.sqlite")
    database = DatabaseConfig(url=_sqlite_relative(base, db_url))
    m = data.get("merger") or {}
    merger = MergerConfig(
        git_dir=rel(m.get("git_dir", os.path.join(state_dir, "git"))) or "",
        git_user_name=m.get("git_user_name", "Gatekeeper"),
        git_user_email=m.get("git_user_email", "gatekeeper@localhost"),
        git_url_base=m.get("git_url_base"),
        url=m.get("url"),
        publish_dir=rel(m.get("publish_dir", os.path.join(state_dir, "publish"))) or "",
        git_daemon=m.get("git_daemon", ("127.0.0.1", 9418)) or None,
        git_private_key=rel(m.get("git_private_key")),
        git_known_hosts=rel(m.get("git_known_hosts")),
    )
    wk = data.get("worker") or {}
    worker = WorkerConfig(
        jobs_root=rel(wk.get("jobs_root", os.path.join(state_dir, "jobs"))) or "",
        log_root=rel(wk.get("log_root", os.path.join(state_dir, "logs"))) or "",
        hostname=wk.get("hostname") or socket.gethostname(),
        log_url=wk.get("log_url", f"http://{host}:{port}/logs/"),
        git_base_url=wk.get("git_base_url"),
        executors=wk.get("executors"),
        hold_hours=wk.get("hold_hours", 24.0),
        jobs_dir=rel(wk.get("jobs_dir")),
        max_held=wk.get("max_held", DEFAULT_MAX_HELD),
        git_private_key=rel(wk.get("git_private_key")),
        git_known_hosts=rel(wk.get("git_known_hosts")),
        nodes=tuple(
            StaticNode(
                name=n["name"],
                host=n["host"],
                username=n["username"],
                private_key=rel(n["private_key"]) or "",
                labels=tuple(n["labels"]),
                port=n.get("port", 22),
                provider=n.get("provider", "static"),
                workdir=n.get("workdir", "workspace"),
                host_key=n.get("host_key"),
            )
            for n in wk.get("nodes") or []
        ),
    )
    config = Config(
        path=path,
        gerrit=gerrit,
        gearman=gearman,
        scheduler=scheduler,
        database=database,
        merger=merger,
        worker=worker,
        web=web,
        pool=data.get("pool") or {},
        smtp=_smtp(data.get("smtp")),
    )
    log.debug("loaded config %s", path)
    return config


def _smtp(s: dict[str, Any] | None) -> SmtpConfig | None:
    if s is None:
        return None
    return SmtpConfig(server=s["server"], port=s.get("port", 25),
                      sender=s.get("from", f"gatekeeper@{socket.getfqdn()}"),
                      starttls=s.get("starttls", False), username=s.get("username"),
                      password=s.get("password"), timeout=s.get("timeout", 30.0))


def _sqlite_relative(base: str, url: str) -> str:
    """``sqlite:///rel.db`` is relative to the config file's directory;
    ``sqlite:////abs.db`` and ``sqlite://`` (memory) stay as written."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and len(url) > len(prefix) and not url[len(prefix):].startswith("/"):
        return prefix + _resolve(base, url[len(prefix):])
    return url
