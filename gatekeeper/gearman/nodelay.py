"""TCP_NODELAY for gear's sockets.

gear writes each Gearman packet with its own ``send``; with Nagle's
algorithm on, a small packet waits for the ACK of the previous one, and
Linux delays that ACK (up to 40 ms). Every job round trip then costs
22-44 ms on loopback (about 30 jobs/s); with TCP_NODELAY it is well over
a thousand (see bench/gearman_throughput.py). gear 0.16 never sets the
option, so we set it ourselves, in exactly two places:

* clients and workers: ``_onConnect`` is gear's hook called right after a
  (re)connection opened the socket and before any packet is sent on it;
* ``gear.Server``: ``_registerConnection`` is called for every accepted
  connection before it is polled.

Both are subclasses, not monkey patches: only objects we create are
affected."""

from __future__ import annotations

import logging
import socket
from typing import Any

import gear

log = logging.getLogger("gatekeeper.gearman.nodelay")


def set_nodelay(sock: Any) -> None:
    """Set TCP_NODELAY on ``sock`` (a socket or an SSL socket)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as e:  # a socket closed under us: gear notices by itself
        log.debug("could not set TCP_NODELAY: %s", e)


def has_nodelay(sock: Any) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class NoDelayMixin:
    """For gear.Client / gear.Worker subclasses."""

    def _onConnect(self, conn: gear.Connection) -> None:
        if conn.conn is not None:
            set_nodelay(conn.conn)
        super()._onConnect(conn)  # type: ignore[misc]


class NoDelayClient(NoDelayMixin, gear.Client):
    pass


class NoDelayWorker(NoDelayMixin, gear.Worker):
    pass


class NoDelayTextWorker(NoDelayMixin, gear.TextWorker):
    pass


class NoDelayServer(gear.Server):
    def _registerConnection(self, conn: Any) -> None:
        set_nodelay(conn.conn)
        super()._registerConnection(conn)
