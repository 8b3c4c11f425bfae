"""The merger process built from the service config: merger + git daemon."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from gatekeeper.config import Config
from gatekeeper.errors import UserError

if TYPE_CHECKING:
    from gatekeeper.merger.service import MergerService

log = logging.getLogger("gatekeeper.services.merger")


class MergerProcess:
    """``merger:merge``/``merger:update`` on Gearman, refs served by git daemon."""

    def __init__(self, config: Config, name: str | None = None):
        from gatekeeper.merger.gitdaemon import GitDaemon
        from gatekeeper.merger.merger import Merger

        m, g = config.merger, config.gerrit
        for d in (m.git_dir, m.publish_dir):
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise UserError(f"{config.path}: merger: {d}: {e.strerror or e}") from e
        if m.git_url_base:
            url_base, key, known_hosts = m.git_url_base, m.git_private_key, m.git_known_hosts
            key_name = "merger.git_private_key"
        else:  # straight from Gerrit over SSH, as the scheduler's account
            url_base = f"ssh://{g.user}@{g.server}:{g.port}/"
            key, known_hosts = g.private_key, (g.known_hosts if g.host_key_checking else None)
            key_name = "gerrit.private_key"
        if key and not os.path.isfile(key):
            raise UserError(f"{config.path}: {key_name}: {key}: no such file")
        self.merger = Merger(m.git_dir, url_base, m.publish_dir, m.git_user_name,
                             m.git_user_email, private_key=key, known_hosts=known_hosts)
        self.daemon = GitDaemon(m.publish_dir, *m.git_daemon) if m.git_daemon else None
        self.config = config
        self.name = name
        self.service: MergerService | None = None

    def start(self) -> MergerProcess:
        from gatekeeper.merger.service import MergerService

        if self.daemon is not None:
            try:
                self.daemon.start()
            except RuntimeError as e:
                raise UserError(f"{self.config.path}: merger.git_daemon: {e}") from e
        zuul_url = self.config.merger.url or (self.daemon.url if self.daemon else None)
        gm = self.config.gearman
        self.service = MergerService(self.merger, gm.server, gm.port, zuul_url, name=self.name,
                                     ssl_key=gm.ssl_key, ssl_cert=gm.ssl_cert, ssl_ca=gm.ssl_ca)
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None
        self.merger.close()  # no ssh master outlives the merger
        if self.daemon is not None:
            self.daemon.stop()
