#!/usr/bin/env bash
# Runs tox in the project under test, as OpenStack's run-tox.sh did
# (layout: run: .gatekeeper/jobs/run-tox.sh, parameters: {TOX_ENV: pep8}).
# The worker has cloned the project at the speculative state into
# $WORKSPACE/$ZUUL_PROJECT; the exit status of tox is the test result.
set -eu
cd "$WORKSPACE/$ZUUL_PROJECT"
exec tox -e "${TOX_ENV:?set the job parameter TOX_ENV (e.g. pep8, py27)}"
