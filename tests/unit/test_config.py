"""etc/gatekeeper.yaml: defaults, path resolution, located errors, secrets."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gatekeeper.config import load_config, pool_labels, redact_url
from gatekeeper.errors import UserError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
gerrit:
  server: review.example.org
  user: gatekeeper
  private_key: keys/id_ed25519
scheduler:
  layout: layout.yaml
"""


def write(tmp_path: Path, text: str, name: str = "gatekeeper.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def errors(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(path)
    return [m.replace(path, "F") for m in e.value.messages]


def test_minimal_config_fills_documented_defaults(tmp_path):
    c = load_config(write(tmp_path, MINIMAL))
    assert c.gerrit.port == 29418
    assert c.gerrit.host_key_checking is True
    assert c.gerrit.known_hosts is None
    assert c.gerrit.event_delay == 0.5
    assert c.gerrit.baseurl == "https://review.example.org"
    assert (c.gearman.server, c.gearman.port, c.gearman.embedded) == ("127.0.0.1", 4730, True)
    assert c.gearman.ssl is False
    assert c.scheduler.state_dir == "/var/lib/gatekeeper"
    assert c.database.url == "sqlite:////var/lib/gatekeeper/gatekeeper.sqlite"
    assert c.merger.git_dir == "/var/lib/gatekeeper/git"
    assert c.merger.git_user_name == "Gatekeeper"
    assert c.worker.jobs_root == "/var/lib/gatekeeper/jobs"
    assert c.worker.log_root == "/var/lib/gatekeeper/logs"
    assert c.worker.hostname  # this machine's name
    assert c.worker.nodes == ()
    assert (c.web.host, c.web.port, c.web.listen) == ("127.0.0.1", 8001, "127.0.0.1:8001")
    assert c.scheduler.status_url == "http://127.0.0.1:8001/"
    assert c.web.admin_token is None
    assert c.pool == {}
    assert c.known_labels() == set()


def test_relative_paths_resolve_against_the_config_directory(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    c = load_config(
        write(
            sub,
            MINIMAL
            + textwrap.dedent(
                """\
                  state_dir: ../state
                database:
                  url: sqlite:///db/gk.sqlite
                worker:
                  jobs_root: /abs/jobs
                  nodes:
                    - {name: n1, host: 127.0.0.1, username: u, private_key: k/id, labels: [a]}
                """
            ),
        )
    )
    assert c.gerrit.private_key == str(sub / "keys/id_ed25519")
    assert c.scheduler.layout == (str(sub / "layout.yaml"),)
    assert c.scheduler.state_dir == str(tmp_path / "state")
    assert c.database.url == "sqlite:///" + str(sub / "db/gk.sqlite")
    assert c.worker.jobs_root == "/abs/jobs"
    assert c.worker.log_root == str(tmp_path / "state/logs")  # default under state_dir
    assert c.worker.nodes[0].private_key == str(sub / "k/id")
    assert c.worker.nodes[0].port == 22 and c.worker.nodes[0].provider == "static"
    assert c.resolve("x") == str(sub / "x")


def test_layout_list_and_absolute_sqlite_and_memory(tmp_path):
    text = MINIMAL.replace("  layout: layout.yaml", "  layout: [a.yaml, /abs/b.yaml]")
    c = load_config(write(tmp_path, text + "database: {url: 'sqlite:////abs/x.db'}\n"))
    assert c.scheduler.layout == (str(tmp_path / "a.yaml"), "/abs/b.yaml")
    assert c.database.url == "sqlite:////abs/x.db"
    c = load_config(write(tmp_path, MINIMAL + "database: {url: 'sqlite://'}\n"))
    assert c.database.url == "sqlite://"


def test_sample_config_is_valid_and_knows_labels():
    c = load_config(str(ROOT / "etc/gatekeeper.yaml"))
    assert c.gearman.embedded is True
    assert "devstack-precise" in c.known_labels()
    assert {"cloudstack-rhel", "cloudstack-ubuntu"} <= c.known_labels()
    for path in c.scheduler.layout:
        assert os.path.isfile(path), path


@pytest.mark.parametrize(
    "extra, expected",
    [
        # unknown key, with a suggestion
        ("gearman:\n  prot: 4730\n", ["F:8: gearman.prot: unknown key (did you mean 'port'?)"]),
        # unknown section
        ("logging: {}\n", ["F:7: logging: unknown key"]),
        # wrong types
        ("gearman:\n  port: '4730'\n", ["F:8: gearman.port: expected a TCP port (1-65535)"]),
        ("gearman:\n  port: 70000\n", ["F:8: gearman.port: expected a TCP port (1-65535)"]),
        ("gearman:\n  embedded: maybe\n", ["F:8: gearman.embedded: expected bool, got string"]),
        ("web:\n  listen: 8001\n", ["F:8: web.listen: expected HOST:PORT, e.g. 127.0.0.1:8001"]),
        (
            "web:\n  listen: 'localhost:http'\n",
            ["F:8: web.listen: expected HOST:PORT, e.g. 127.0.0.1:8001, not 'localhost:http'"],
        ),
        ("database:\n  url: gk.sqlite\n", ["F:8: database.url: expected a URL (scheme://...)"]),
        ("pool: [a]\n", ["F:7: pool: expected a mapping"]),
        (
            "gearman:\n  ssl_key: k\n  ssl_cert: c\n",
            ["F:8: gearman.ssl_key: SSL needs ssl_key, ssl_cert and ssl_ca; missing ssl_ca"],
        ),
        (
            "worker:\n  nodes:\n    - name: n1\n      host: h\n      username: u\n"
            "      private_key: k\n      labels: []\n",
            ["F:13: worker.nodes[0].labels: needs at least one label"],
        ),
        (
            "worker:\n  nodes:\n    - {name: n1, host: h, username: u, private_key: k, labels: [a]}\n"
            "    - {name: n1, host: h, username: u, private_key: k, labels: [a]}\n",
            ["F:10: worker.nodes[1].name: duplicate node name 'n1' (first on line 9)"],
        ),
        (
            "worker:\n  nodes:\n    - {name: n1, host: h, labels: [a]}\n",
            [
                "F:9: worker.nodes[0].private_key: required key missing",
                "F:9: worker.nodes[0].username: required key missing",
            ],
        ),
        ("gerrit2: {}\n", ["F:7: gerrit2: unknown key (did you mean 'gerrit'?)"]),
    ],
)
def test_config_errors_name_file_line_and_key(tmp_path, extra, expected):
    assert sorted(errors(tmp_path, MINIMAL + extra)) == sorted(expected)


def test_missing_required_keys_and_sections(tmp_path):
    assert sorted(errors(tmp_path, "gerrit:\n  server: x\n  port: 29418\n")) == [
        "F:1: gerrit.private_key: required key missing",
        "F:1: gerrit.user: required key missing",
        "F:1: scheduler: required key missing",
    ]


def test_every_error_is_reported_not_just_the_first(tmp_path):
    msgs = errors(
        tmp_path,
        MINIMAL + "gearman:\n  port: x\n  embeded: true\nweb:\n  listen: nope\n",
    )
    assert msgs == [
        "F:8: gearman.port: expected a TCP port (1-65535)",
        "F:9: gearman.embeded: unknown key (did you mean 'embedded'?)",
        "F:11: web.listen: expected HOST:PORT, e.g. 127.0.0.1:8001",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "F:1: empty config"),
        ("- a\n- b\n", "F:1: expected a mapping of sections"),
        ("gerrit: [\n", "F:2: YAML syntax error"),
    ],
)
def test_unusable_documents(tmp_path, text, expected):
    (msg,) = errors(tmp_path, text)
    assert msg.startswith(expected)


def test_secrets_never_in_repr_or_str(tmp_path):
    c = load_config(
        write(
            tmp_path,
            MINIMAL
            + "web:\n  admin_token: s3cr3t-token\n"
            + "database:\n  url: postgresql://gk:db-passw0rd@127.0.0.1/gk\n"
            + "pool:\n  providers:\n    - {name: cloud, password: cloud-passw0rd}\n",
        )
    )
    assert c.web.admin_token == "s3cr3t-token"
    assert c.database.url == "postgresql://gk:db-passw0rd@127.0.0.1/gk"
    for text in (repr(c), str(c), repr(c.web), repr(c.database), str(c.database)):
        assert "s3cr3t-token" not in text
        assert "db-passw0rd" not in text
        assert "cloud-passw0rd" not in text
    assert "postgresql://gk:***@127.0.0.1/gk" in repr(c)


def test_redact_url():
    assert redact_url("mysql://u:p@h/db") == "mysql://u:***@h/db"
    assert redact_url("sqlite:////x.db") == "sqlite:////x.db"


@pytest.mark.parametrize(
    "pool, labels",
    [
        ({"labels": [{"name": "a", "min-ready": 1}, {"name": "b"}]}, {"a", "b"}),
        ({"labels": {"a": {}, "c": {}}}, {"a", "c"}),
        ({"labels": ["x", "y"]}, {"x", "y"}),
        ({"providers": []}, set()),
    ],
)
def test_pool_label_shapes(pool, labels):
    assert pool_labels(pool) == labels


def test_known_labels_union_of_static_nodes_and_pool(tmp_path):
    c = load_config(
        write(
            tmp_path,
            MINIMAL
            + "worker:\n  nodes:\n"
            + "    - {name: n1, host: h, username: u, private_key: k, labels: [static-a, shared]}\n"
            + "pool:\n  labels: [{name: pool-b}, {name: shared}]\n",
        )
    )
    assert c.known_labels() == {"static-a", "shared", "pool-b"}


@pytest.mark.parametrize("section, old, new", [
    ("gerrit", "sshkey", "private_key"),
    ("merger", "git_ssh_key", "git_private_key"),
    ("worker", "git_ssh_key", "git_private_key"),
])
def test_old_key_names_are_read_as_their_new_ones(tmp_path, section, old, new):
    """Configs written before the one name for a private key's path keep working."""
    base = MINIMAL.replace("  private_key: keys/id_ed25519\n", "  sshkey: keys/id_ed25519\n") \
        if section == "gerrit" else MINIMAL
    text = base + ("" if section == "gerrit" else f"{section}:\n  {old}: keys/git\n")
    c = load_config(write(tmp_path, text))
    got = getattr(getattr(c, section), new)
    assert got == str(tmp_path / ("keys/id_ed25519" if section == "gerrit" else "keys/git"))
    # Both names at once: one located error naming the old one.
    both = text + (f"  {new}: keys/other\n" if section != "gerrit" else "")
    if section == "gerrit":
        both = both.replace("  sshkey: keys/id_ed25519\n",
                            "  sshkey: keys/id_ed25519\n  private_key: keys/other\n")
    line = next(i for i, t in enumerate(textwrap.dedent(both).splitlines(), 1)
                if t.strip().startswith(f"{old}:"))
    assert errors(tmp_path, both) == [
        f"F:{line}: {section}.{old}: the old name of {section}.{new}; give only {new}"]
