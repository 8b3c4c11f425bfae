"""The gate simulator: the real scheduler core in virtual time against a
simulated Gerrit, merger, launcher and node pool (``gatekeeper simulate``)."""
