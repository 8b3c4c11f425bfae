#!/usr/bin/env bash
# The devstack gate job, run on the node by the gatekeeper worker
# (layout: run: .gatekeeper/jobs/devstack-vm-gate.sh, label: <node label>).
#
# The worker has already cloned every project of the job at the speculative
# state into $WORKSPACE/<project> and rsynced it here. This script, as
# devstack-gate's devstack-vm-gate.sh did: writes devstack's localrc, links
# the projects into DEST (so devstack installs the code under test and never
# clones from the network), runs stack.sh, then exercise.sh (and tempest if
# asked), and copies the logs to $WORKSPACE/logs, which the worker collects
# (*.log are published as *.txt). The exit status is the test result.
#
# Configuration (environment; job parameters in the layout):
#   DEVSTACK_GATE_TEMPEST=0|1      also enable tempest and run $TEMPEST_DIR/run_tempest.sh
#   DEVSTACK_GATE_TEMPEST_DIR      tempest checkout (default: the workspace project named tempest)
#   DEVSTACK_GATE_EXERCISES=1|0    run devstack's exercise.sh after stack.sh
#   DEVSTACK_GATE_SKIP_EXERCISES   SKIP_EXERCISES for exercise.sh (default boot_from_volume,client-env)
#   DEVSTACK_GATE_VIRT_DRIVER      VIRT_DRIVER (default libvirt)
#   DEVSTACK_GATE_POSTGRES=0|1     PostgreSQL instead of MySQL
#   DEVSTACK_GATE_NEUTRON=0|1      Neutron (quantum) networking instead of nova-network
#   DEVSTACK_GATE_CINDER=1|0       volume service (cinder) instead of nova-volume
#   DEVSTACK_GATE_SERVICES         the complete ENABLED_SERVICES list (overrides the above)
#   DEVSTACK_GATE_EXTRA_LOCALRC    lines appended verbatim to localrc (shell code devstack
#                                  sources: set it only in the layout, never from a change)
#   DEVSTACK_GATE_DEVSTACK_DIR     devstack checkout (default: the workspace project named devstack)
#   DEVSTACK_GATE_DEST             DEST for devstack (default $WORKSPACE/stack)
#   DEVSTACK_GATE_SYSLOG           syslog file to collect (default /var/log/syslog if readable,
#                                  else $DEST/syslog.log)
#   DEVSTACK_GATE_STACK_TIMEOUT    seconds stack.sh may take (default: no limit; the
#                                  worker enforces the job timeout anyway)
set -eu

: "${WORKSPACE:?WORKSPACE is not set (run by the gatekeeper worker)}"
cd "$WORKSPACE"
LOGS=$WORKSPACE/logs
mkdir -p "$LOGS"

echo "devstack gate: ${ZUUL_PROJECT:-?} change ${ZUUL_CHANGE:-none},${ZUUL_PATCHSET:-} " \
     "pipeline ${ZUUL_PIPELINE:-?} on ${NODE_PROVIDER:-unknown provider}"

find_project() {  # the workspace project whose last path component is $1
    local d
    for d in "$WORKSPACE"/*/"$1" "$WORKSPACE"/"$1" "$WORKSPACE"/*/*/"$1"; do
        if [ -d "$d/.git" ]; then echo "$d"; return 0; fi
    done
    return 1
}

DEVSTACK_DIR=${DEVSTACK_GATE_DEVSTACK_DIR:-}
if [ -z "$DEVSTACK_DIR" ]; then
    DEVSTACK_DIR=$(find_project devstack) || {
        echo "devstack gate: no devstack project in the workspace (add it to the job's projects)" >&2
        exit 2
    }
fi
DEST=${DEVSTACK_GATE_DEST:-$WORKSPACE/stack}
mkdir -p "$DEST"

# Every repository of the workspace appears in DEST under its short name,
# as devstack expects ($DEST/nova, $DEST/glance, ...).
for gitdir in "$WORKSPACE"/*/.git "$WORKSPACE"/*/*/.git "$WORKSPACE"/*/*/*/.git; do
    [ -d "$gitdir" ] || continue
    repo=$(dirname "$gitdir")
    case "$repo" in "$DEST"/*|"$WORKSPACE"/.gatekeeper/*) continue;; esac
    ln -sfn "$repo" "$DEST/$(basename "$repo")"
done

if [ -n "${DEVSTACK_GATE_SERVICES:-}" ]; then
    services=$DEVSTACK_GATE_SERVICES
else
    services=g-api,g-reg,key,n-api,n-crt,n-obj,n-cpu,n-sch,horizon,n-cauth,n-novnc,rabbit
    if [ "${DEVSTACK_GATE_CINDER:-1}" = 1 ]; then
        services=$services,c-api,c-vol,c-sch
    else
        services=$services,n-vol
    fi
    if [ "${DEVSTACK_GATE_POSTGRES:-0}" = 1 ]; then
        services=$services,postgresql
    else
        services=$services,mysql
    fi
    if [ "${DEVSTACK_GATE_NEUTRON:-0}" = 1 ]; then
        services=$services,quantum,q-svc,q-agt,q-dhcp,q-l3,q-meta
    else
        services=$services,n-net
    fi
    if [ "${DEVSTACK_GATE_TEMPEST:-0}" = 1 ]; then
        services=$services,tempest
    fi
fi

# Throwaway credentials, new for each build (the node is discarded or held).
secret=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
LOCALRC=$DEVSTACK_DIR/localrc
# devstack sources localrc: every value is written shell-quoted (%q), so a
# value from a job parameter or a change can never run as code there.
rc() {
    if [[ $2 =~ ^[A-Za-z0-9_.,/:@%+=-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"  # plain words stay readable
    else
        printf '%s=%q\n' "$1" "$2"
    fi
}
{
    rc DEST "$DEST"
    rc ACTIVE_TIMEOUT 60
    rc BOOT_TIMEOUT 90
    rc ASSOCIATE_TIMEOUT 60
    rc MYSQL_PASSWORD "$secret"
    rc RABBIT_PASSWORD "$secret"
    rc ADMIN_PASSWORD "$secret"
    rc SERVICE_PASSWORD "$secret"
    rc SERVICE_TOKEN "$secret"
    rc ROOTSLEEP 0
    rc ERROR_ON_CLONE True
    rc OFFLINE True
    rc ENABLED_SERVICES "$services"
    rc SKIP_EXERCISES "${DEVSTACK_GATE_SKIP_EXERCISES:-boot_from_volume,client-env}"
    rc SERVICE_HOST 127.0.0.1
    rc SYSLOG True
    rc SCREEN_LOGDIR "$DEST/screen-logs"
    rc LOGFILE "$DEST/devstacklog.txt"
    rc VERBOSE True
    rc FIXED_RANGE 10.1.0.0/24
    rc FIXED_NETWORK_SIZE 256
    rc VIRT_DRIVER "${DEVSTACK_GATE_VIRT_DRIVER:-libvirt}"
} > "$LOCALRC"
if [ -n "${DEVSTACK_GATE_EXTRA_LOCALRC:-}" ]; then
    printf '%s\n' "$DEVSTACK_GATE_EXTRA_LOCALRC" >> "$LOCALRC"
fi

copy_logs() {
    local f syslog
    # localrc, without the throwaway credentials.
    sed -e 's/\(PASSWORD\|TOKEN\)=.*/\1=<hidden>/' "$LOCALRC" > "$LOGS/localrc.txt" || true
    for f in "$DEST"/screen-logs/screen-*.log; do
        [ -f "$f" ] && cp -L "$f" "$LOGS/" || true
    done
    [ -f "$DEST/devstacklog.txt" ] && cp "$DEST/devstacklog.txt" "$LOGS/" || true
    syslog=${DEVSTACK_GATE_SYSLOG:-}
    if [ -z "$syslog" ]; then
        if [ -r /var/log/syslog ]; then syslog=/var/log/syslog; else syslog=$DEST/syslog.log; fi
    fi
    case "$syslog" in /*) ;; *) syslog=$WORKSPACE/$syslog;; esac
    if [ -r "$syslog" ]; then cp "$syslog" "$LOGS/syslog.txt" || true; fi
}
trap copy_logs EXIT

run_step() {  # name, command...: runs with a banner; returns the status
    local name=$1; shift
    echo "devstack gate: running $name"
    local rc=0
    if [ -n "${DEVSTACK_GATE_STACK_TIMEOUT:-}" ] && [ "$name" = stack.sh ]; then
        # --foreground: timeout must stay in the job's process group, which the worker kills.
        timeout --foreground --kill-after=30 "$DEVSTACK_GATE_STACK_TIMEOUT" "$@" || rc=$?
    else
        "$@" || rc=$?
    fi
    echo "devstack gate: $name exited with status $rc"
    return "$rc"
}

cd "$DEVSTACK_DIR"
run_step stack.sh ./stack.sh
if [ "${DEVSTACK_GATE_EXERCISES:-1}" = 1 ]; then
    run_step exercise.sh ./exercise.sh
fi
if [ "${DEVSTACK_GATE_TEMPEST:-0}" = 1 ]; then
    TEMPEST_DIR=${DEVSTACK_GATE_TEMPEST_DIR:-}
    if [ -z "$TEMPEST_DIR" ]; then
        TEMPEST_DIR=$(find_project tempest) || {
            echo "devstack gate: DEVSTACK_GATE_TEMPEST=1 but no tempest project in the workspace" >&2
            exit 2
        }
    fi
    cd "$TEMPEST_DIR"
    run_step tempest ./run_tempest.sh
fi
echo "devstack gate: SUCCESS"
