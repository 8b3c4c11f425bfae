"""Developer SSH keys on autoheld nodes: debug a failure where it happened.

An autohold request may carry a developer's public key (one
``authorized_keys`` line: type, base64 body, optional comment — never
options such as ``command=``). The key is kept in its own table
(``pool_autohold_keys``, one of the pool's tables in ``nodes/db.py``). When the request holds a node, the pool appends the key to
``.ssh/authorized_keys`` in the node user's home — in the node's workdir
for nodes that keep builds there (local sshd nodes, whose sshd reads it;
a static host with ``workdir`` must be set up the same way) — with a fixed
command, the key on stdin, and writes into the node's hold reason how to log in and
until when — what ``gatekeeper nodes list``, the web's nodes and build
pages show. A provider whose policy forbids it says
``allow_developer_keys: false``; the key is then not installed and the hold
reason says why."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.model.states import NodeState
from gatekeeper.nodes.db import Node, PoolStore
from gatekeeper.nodes.db import autohold_keys as keys_table
from gatekeeper.shell import devkey_command

log = logging.getLogger("gatekeeper.nodes.devkeys")

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
             "sk-ecdsa-sha2-nistp256@openssh.com")
_LINE = re.compile(r"^(\S+) ([A-Za-z0-9+/]+={0,2})(?: ([\x20-\x7e]{1,200}))?$")

class BadKey(ValueError):
    pass


def check_public_key(text: str) -> str:
    """The key as one clean ``TYPE BASE64 [COMMENT]`` line, or BadKey saying why."""
    line = text.strip()
    if "\n" in line or "\r" in line:
        raise BadKey("an SSH public key is one line")
    m = _LINE.match(line)
    if not m:
        raise BadKey("expected an OpenSSH public key: TYPE BASE64 [COMMENT]")
    kind, body = m.group(1), m.group(2)
    if kind not in KEY_TYPES:
        raise BadKey(f"unsupported key type {kind[:40]!r} (one of {', '.join(KEY_TYPES)})")
    try:
        blob = base64.b64decode(body, validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        inner = blob[4:4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise BadKey("the key's base64 body is not an SSH key") from None
    if inner != kind:
        raise BadKey(f"the key body is a {inner[:40]!r} key, not {kind!r}")
    return line


class DevKeyStore:
    """On an engine whose pool schema is current (a PoolStore opened it)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def set(self, autohold: int, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(keys_table).where(keys_table.c.autohold == autohold))
            conn.execute(sa.insert(keys_table).values(autohold=autohold, ssh_key=key))

    def get(self, autohold: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(keys_table.c.ssh_key)
                                .where(keys_table.c.autohold == autohold)).scalar()

    def all(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            return {r.autohold: r.ssh_key for r in conn.execute(sa.select(keys_table))}

    def delete(self, autohold: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(keys_table).where(keys_table.c.autohold == autohold))


def login_line(username: str, host: str, port: int, until: float | None) -> str:
    when = "until deleted" if until is None else \
        "until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
    return f"log in: ssh -p {int(port)} {username}@{host} ({when})"



def give_access(keys: DevKeyStore, pool: PoolStore, node: Node, autohold: int,
                until: float | None, reason: str, refused_by: frozenset[str],
                now: float) -> None:
    """Install autohold ``autohold``'s key on held ``node`` (if it has one) and
    say in the node's hold reason how to log in, or why not."""
    from gatekeeper.nodes.sshrun import SshError, SshTarget, run

    key = keys.get(autohold)
    if key is None:
        return
    if node.provider in refused_by:
        note = (f"developer key not installed: provider {node.provider} does not allow "
                "developer keys")
    else:
        target = SshTarget(node.host or "", node.port, node.username, node.private_key,
                           node.host_key)
        try:
            # Our command (the directory is the pool's own record, data); the key on stdin.
            rc, _, err = run(target, devkey_command(node.workdir), timeout=60,
                             stdin=(key + "\n").encode())
            note = login_line(target.username, target.host, target.port, until) if rc == 0 \
                else f"developer key not installed: exit {rc}: {err.strip()[:200]}"
        except SshError as e:
            note = f"developer key not installed: {e}"
    log.info("node %d (autohold %d): %s", node.id, autohold, note)
    pool.transition(node.id, [NodeState.HOLD], NodeState.HOLD, now, hold_until=until,
                    hold_reason=f"{reason}; {note}"[:1000])
