"""Every command line that a shell, or a shell-like splitter, reads: ssh's
remote command, GIT_SSH_COMMAND, rsync's ``-e``, Gerrit's SSH commands.

They are built here from argv lists only: each word is quoted (``shlex.join``),
so data (a commit message, a branch name, a path) can never become syntax or
an option. The few shell scripts are constants that take their data as
positional parameters ("$1"), never interpolated."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

PIDFILE = ".gatekeeper/job.pid"  # relative to the node's workdir
RCFILE = ".gatekeeper/job.rc"  # the job's exit status, once it exited
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def command_line(argv: Sequence[object]) -> str:
    """The one string for a shell: every word quoted."""
    if not argv:
        raise ValueError("empty command")
    return shlex.join(str(a) for a in argv)


def env_argv(env: Mapping[str, str]) -> list[str]:
    """``env K=V ...`` as argv; names are checked, values are data (quoted later)."""
    out = ["env"]
    for k, v in env.items():
        if not _ENV_NAME.match(k):
            raise ValueError(f"invalid environment variable name {k!r}")
        out.append(f"{k}={v}")
    return out


# Runs in a new session (setsid), so $$ is the process group id of the whole
# job: written to the pid file first. The shell stays (no exec) to record the
# job's exit status: ssh's own 255 (connection lost) is then told apart from
# a script that exited 255. $1 = workdir, the rest = the job's argv.
# WORKSPACE = the absolute workdir.
_JOB_WRAPPER = ('cd "$1" || exit 125; shift; mkdir -p .gatekeeper && '
                f'echo $$ > {PIDFILE} && rm -f {RCFILE} || exit 125; '
                'WORKSPACE=$PWD; export WORKSPACE; '
                f'"$@"; rc=$?; echo "$rc" > {RCFILE}; exit "$rc"')

# Kill the job's process group: TERM, wait up to $2 tenths of a second, KILL.
# $1 = workdir. Prints what it did. "Alive" ignores zombies (kill -0 counts
# them, and an init that reaps slowly would turn every TERM into a KILL).
# dash's kill takes no "--": "-PGID" as is.
_KILL_SCRIPT = (
    f'cd "$1" 2>/dev/null || exit 0; pg=$(cat {PIDFILE} 2>/dev/null) || '
    '{ echo "no job started"; exit 0; }; '
    'case "$pg" in ""|*[!0-9]*) echo "bad pid file"; exit 0;; esac; '
    'if command -v ps >/dev/null 2>&1; then '
    'alive() { ps -A -o pgid= -o stat= | '
    'awk -v pg="$pg" \'$1 == pg && $2 !~ /^Z/ {f = 1} END {exit !f}\'; }; '
    'else alive() { kill -0 "-$pg" 2>/dev/null; }; fi; '
    'alive || { echo "job $pg already gone"; exit 0; }; '
    'kill -TERM "-$pg" 2>/dev/null; '
    'i=0; while alive; do i=$((i+1)); '
    'if [ "$i" -ge "$2" ]; then kill -KILL "-$pg" 2>/dev/null; '
    'echo "job $pg killed (KILL)"; exit 0; fi; sleep 0.1; done; '
    'echo "job $pg terminated (TERM)"')


def job_argv(workdir: str, env: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """The remote argv that runs ``argv`` in its own session under ``workdir``."""
    return ["setsid", "-w", "sh", "-c", _JOB_WRAPPER, "gatekeeper-job", workdir,
            *env_argv(env), *argv]


def kill_argv(workdir: str, grace: float) -> list[str]:
    return ["sh", "-c", _KILL_SCRIPT, "gatekeeper-kill", workdir, str(max(1, int(grace * 10)))]



# The pool installs a developer's public key (on stdin) for a held node; $1 =
# the directory to install under ("" = the login's home).
_DEVKEY_SCRIPT = ('if [ -n "$1" ]; then cd "$1" || exit 1; fi; '
                  'umask 077 && mkdir -p .ssh && cat >> .ssh/authorized_keys')


def devkey_command(workdir: str | None) -> str:
    return command_line(["sh", "-c", _DEVKEY_SCRIPT, "gatekeeper-devkey", workdir or ""])
