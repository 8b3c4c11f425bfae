"""A stand-in devstack repository for tests and the quickstart.

Real devstack cannot run here, so ``make_standin_devstack`` creates a git
repository with the same entry points (``stack.sh``, ``exercise.sh``) that
do real, checkable work on the node: read ``localrc``, "start" each
enabled service (a screen-<svc>.log and syslog lines under DEST), then
exercise them. Outcomes on demand, decided by the code under test (any
repository of the workspace) or by job parameters:

=====================  ==========================================================
``FAIL_GATE`` file     exercise.sh fails (a change that breaks the gate)
``FAIL_STACK`` file    stack.sh fails
``SLEEP_GATE`` file    exercise.sh sleeps that many seconds (content; default 3600)
``STANDIN_FAIL``       ``stack`` or ``exercise``: fail that step
``STANDIN_SLEEP``      seconds exercise.sh sleeps (timeouts, stop requests)
``STANDIN_BIG_LOG``    bytes of an extra screen-big.log (log compression)
=====================  ==========================================================

While sleeping, exercise.sh writes ``$WORKSPACE/.gatekeeper/standin-sleep.pids``
(its own pid and the sleep's) so a test can check the processes are gone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_COMMON = r'''
set -eu
: "${WORKSPACE:?}"
here=$(cd "$(dirname "$0")" && pwd)
# devstack reads localrc; so does the stand-in.
[ -f "$here/localrc" ] || { echo "standin: no localrc in $here" >&2; exit 3; }
. "$here/localrc"
: "${DEST:?localrc must set DEST}"
SCREEN_LOGDIR=${SCREEN_LOGDIR:-$DEST/screen-logs}
gate_file() {  # the first file named $1 in any repository of the workspace
    find "$WORKSPACE" -maxdepth 4 -name "$1" -not -path '*/.git/*' -print -quit 2>/dev/null
}
syslog() { echo "$(date '+%b %d %H:%M:%S') $(hostname) $1: $2" >> "$DEST/syslog.log"; }
'''

STACK_SH = "#!/usr/bin/env bash\n# stand-in devstack: stack.sh" + _COMMON + r'''
echo "stack.sh: DEST=$DEST VIRT_DRIVER=${VIRT_DRIVER:-unset}"
mkdir -p "$SCREEN_LOGDIR"
: > "$DEST/syslog.log"
if [ "${STANDIN_FAIL:-}" = stack ] || [ -n "$(gate_file FAIL_STACK)" ]; then
    echo "stack.sh: ERROR: a service failed to start (failure requested)" >&2
    syslog stack.sh "ERROR: failure requested"
    exit 1
fi
for svc in $(echo "${ENABLED_SERVICES:-}" | tr ',' ' '); do
    src=$DEST/$svc
    rev=none
    if [ -d "$src/.git" ]; then rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo none); fi
    {
        echo "$(date '+%F %T') starting $svc (source $rev)"
        echo "$(date '+%F %T') $svc: listening"
    } > "$SCREEN_LOGDIR/screen-$svc.log"
    syslog "$svc[$$]" "started"
    echo "stack.sh: started $svc"
done
if [ -n "${STANDIN_BIG_LOG:-}" ]; then
    yes "standin: a long line of log output to make the log big enough to compress" \
        | head -c "$STANDIN_BIG_LOG" > "$SCREEN_LOGDIR/screen-big.log"
fi
echo "stack.sh completed in 1 seconds." | tee -a "$DEST/devstacklog.txt"
echo ok > "$DEST/.stack-status"
'''

EXERCISE_SH = "#!/usr/bin/env bash\n# stand-in devstack: exercise.sh" + _COMMON + r'''
[ "$(cat "$DEST/.stack-status" 2>/dev/null)" = ok ] || { echo "exercise.sh: stack.sh did not complete" >&2; exit 1; }
passed=() failed=()
for svc in $(echo "${ENABLED_SERVICES:-}" | tr ',' ' '); do
    if [ -s "$SCREEN_LOGDIR/screen-$svc.log" ]; then passed+=("$svc"); else failed+=("$svc"); fi
done
secs=${STANDIN_SLEEP:-}
f=$(gate_file SLEEP_GATE)
if [ -n "$f" ]; then secs=$(tr -dc 0-9 < "$f"); secs=${secs:-3600}; fi
if [ -n "$secs" ]; then
    echo "exercise.sh: sleeping $secs seconds"
    mkdir -p "$WORKSPACE/.gatekeeper"
    sleep "$secs" &
    echo "$$ $!" > "$WORKSPACE/.gatekeeper/standin-sleep.pids"
    wait $!
fi
f=$(gate_file FAIL_GATE)
if [ "${STANDIN_FAIL:-}" = exercise ] || [ -n "$f" ]; then
    failed+=("gate${f:+ (${f#"$WORKSPACE"/})}")
fi
syslog exercise.sh "passed ${#passed[@]} failed ${#failed[@]}"
echo "====================================================================="
for p in "${passed[@]}"; do echo "SUCCESS $p"; done
for p in "${failed[@]}"; do echo "FAILED $p"; done
echo "====================================================================="
[ ${#failed[@]} -eq 0 ]
'''

README = """Stand-in devstack made by gatekeeper.worker.standin: stack.sh and exercise.sh
do small, real work (logs under DEST) and fail or sleep on demand.
"""


def _git(path: Path, *argv: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Gatekeeper", "GIT_AUTHOR_EMAIL": "gatekeeper@localhost",
           "GIT_COMMITTER_NAME": "Gatekeeper", "GIT_COMMITTER_EMAIL": "gatekeeper@localhost",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *argv], cwd=path, env=env, check=True, stdin=subprocess.DEVNULL,
                   capture_output=True)


def write_standin_files(path: Path) -> list[str]:
    """Write stack.sh, exercise.sh and README into ``path``; returns the names."""
    files = {"stack.sh": STACK_SH, "exercise.sh": EXERCISE_SH, "README.standin": README}
    for name, text in files.items():
        (path / name).write_text(text)
        if name.endswith(".sh"):
            (path / name).chmod(0o755)
    return list(files)


def make_standin_devstack(path: Path, branch: str = "master", bare: bool = False) -> Path:
    """Create a git repository at ``path`` holding the stand-in devstack (one commit).

    ``bare=True`` makes a bare repository (to serve or push from)."""
    path = Path(path)
    work = path if not bare else path.with_name(path.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    _git(work, "init", "-q", "-b", branch)
    names = write_standin_files(work)
    _git(work, "add", *names)
    _git(work, "commit", "-q", "-m", "Stand-in devstack")
    if bare:
        _git(work.parent, "clone", "-q", "--bare", str(work), str(path))
        shutil.rmtree(work)
    return path
