"""``GerritReporter``: votes, messages, submit and abandon via ``gerrit review``.

Never through gerritlib's ``review()``, which wraps the message in ``"%s"``
unescaped (a message could add votes or submit). The message and labels go
as a ReviewInput on stdin (``gerrit review --json``), so no byte of them is
ever parsed as a command line. Gerrit refuses ``--json`` together with
``--submit``/``--abandon``, so those are separate commands whose only data,
the change and project, are quoted.

Transport failures (and Gerrit's transient "internal server error") are
retried a bounded number of times with backoff; a refusal (merge conflict,
closed change, permission) is returned as it is. Nothing here raises into
the scheduler."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.ssh import CommandResult, GerritError, GerritFatalError, GerritSSH
from gatekeeper.interfaces import ReportResult
from gatekeeper.model.change import Change

log = logging.getLogger("gatekeeper.gerrit.reporter")

# Gerrit answers that say "try again" rather than "no".
TRANSIENT_RE = re.compile(
    r"internal server error|temporarily|try again|timed? ?out|unavailable|lock failure|"
    r"LockFailure|too many", re.IGNORECASE)
# Answers that will not change on a retry of a plain review.
PERMANENT_RE = re.compile(
    r"not permitted|is closed|not found|no such|restricted|not a valid|invalid|"
    r"is not current|mutually exclusive|not allowed|must be", re.IGNORECASE)


class GerritReporter:
    """Implements :class:`gatekeeper.interfaces.Reporter`."""

    def __init__(self, ssh: GerritSSH, attempts: int = 3, backoff: Backoff | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random):
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.ssh = ssh
        self.attempts = attempts
        self.backoff = backoff or Backoff(initial=2.0, maximum=30.0)
        self.sleep = sleep
        self.rand = rand

    # --- Reporter API --------------------------------------------------------

    def report(self, change: Change, message: str, labels: dict[str, int],
               submit: bool = False) -> ReportResult:
        if message or labels:
            result = self.review(change, message, labels)
            if not result.ok:
                return result
        if submit:
            return self.submit(change)
        return ReportResult(ok=True)

    def review(self, change: Change, message: str, labels: dict[str, int]) -> ReportResult:
        review_input: dict[str, object] = {}
        if message:
            review_input["message"] = message
        if labels:
            review_input["labels"] = {str(k): int(v) for k, v in labels.items()}
        stdin = json.dumps(review_input).encode("utf-8")
        argv = ["gerrit", "review", "--json", "--project", change.project, change.id_string]
        return self._run("review", change, argv, stdin, retry_refusals=True)

    def submit(self, change: Change) -> ReportResult:
        argv = ["gerrit", "review", "--project", change.project, "--submit", change.id_string]
        return self._run("submit", change, argv, None, retry_refusals=False)

    def abandon(self, change: Change, message: str = "") -> ReportResult:
        argv = ["gerrit", "review", "--project", change.project, "--abandon"]
        if message:
            argv += ["--message", message]  # quoted by command_line(); Gerrit splits it back
        argv.append(change.id_string)
        return self._run("abandon", change, argv, None, retry_refusals=False)

    # --- retries -------------------------------------------------------------

    def _run(self, what: str, change: Change, argv: Sequence[str], stdin: bytes | None,
             retry_refusals: bool) -> ReportResult:
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            try:
                res: CommandResult = self.ssh.run(argv, stdin=stdin)
            except GerritFatalError as e:
                log.error("Gerrit %s of %s failed: %s", what, change.id_string, e)
                return ReportResult(ok=False, error=str(e))
            except GerritError as e:
                error = str(e)
                retry = True
            except Exception as e:  # never raise into the scheduler
                log.exception("Unexpected error during Gerrit %s of %s", what, change.id_string)
                return ReportResult(ok=False, error=f"{type(e).__name__}: {e}")
            else:
                if res.ok:
                    if attempt > 1:
                        log.info("Gerrit %s of %s succeeded on attempt %d", what,
                                 change.id_string, attempt)
                    return ReportResult(ok=True)
                error = res.error_text()
                if TRANSIENT_RE.search(error):
                    retry = True
                elif retry_refusals:
                    retry = not PERMANENT_RE.search(error)
                else:
                    retry = False
                if not retry:
                    log.warning("Gerrit refused %s of %s: %s", what, change.id_string, error)
                    return ReportResult(ok=False, error=error)
            if attempt < self.attempts:
                delay = self.backoff.delay(attempt, self.rand)
                log.warning("Gerrit %s of %s failed (attempt %d/%d: %s); retrying in %.1fs",
                            what, change.id_string, attempt, self.attempts, error, delay)
                self.sleep(delay)
        log.error("Gerrit %s of %s failed after %d attempts: %s", what, change.id_string,
                  self.attempts, error)
        return ReportResult(ok=False, error=error)
