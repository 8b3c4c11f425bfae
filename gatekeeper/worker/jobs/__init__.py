"""Job scripts shipped with gatekeeper; the worker copies them to $WORKSPACE/.gatekeeper/jobs."""
