"""The Gearman wire contract between scheduler, workers, mergers and the pool.

All payloads are UTF-8 JSON objects. Function names:

``build:JOB`` / ``build:JOB:LABEL``
    Run one build. Arguments: ``BuildArgs`` (the ZUUL_* parameters plus a
    ``gatekeeper`` object describing the job). Unique id: the build uuid.
    The worker sends WORK_DATA ``{"worker", "node", "provider", "url"}`` once
    it has a node (may repeat with more fields), WORK_STATUS for progress,
    and WORK_COMPLETE with ``BuildResult`` (``result``: one of
    ``gatekeeper.model.states.WORKER_RESULTS``). WORK_FAIL / WORK_EXCEPTION mean
    the build was lost (infrastructure), never that the tests failed.

``stop:WORKER``
    Ask WORKER (the name it sent in WORK_DATA) to abort a running build:
    ``{"uuid": BUILD_UUID}``. The worker kills the remote command, collects
    logs, releases the node and completes the build with result CANCELED (older workers
    said ABORTED; the launcher takes either).

``merger:merge`` / ``merger:update``
    Build a speculative state: ``MergeArgs``; returns ``MergeResult``.
    ``merger:update`` only fetches the listed projects.

``node:claim:LABEL`` / ``node:release``
    Node pool: claim returns a node lease (host, port, username, key path,
    provider, node id) or waits; release takes ``{"node_id", "state":
    "used"|"hold", "hold_for", "reason", "build"}``.

``console:WORKER``
    A running build's console: ``{"uuid", "offset"}``; WORK_DATA chunks of
    the text as the node prints, WORK_COMPLETE ``{"end"}`` when the build
    ends, or ``{"error"}`` (see ``gatekeeper.worker.console_stream``).

``gatekeeper:status`` / ``gatekeeper:explain`` / ``gatekeeper:manage`` / ``gatekeeper:metrics``
    The scheduler's RPC face for the web service (Zuul v3's zuul-web reached
    its scheduler the same way). ``status``: no arguments; returns the status
    snapshot. ``explain``: ``{"change"}``; returns ``{"text"}``. ``manage``:
    ``{"action": "enqueue"|"dequeue"|"promote"|"reconfigure", ...}``; returns
    ``{"ok": true}`` or ``{"error"}`` once the scheduler's loop handled it.
    ``metrics``: returns ``{"text"}``, the scheduler's Prometheus metrics.
"""

from __future__ import annotations

import json
from typing import Any

BUILD_PREFIX = "build:"
STOP_PREFIX = "stop:"
MERGE_FUNCTION = "merger:merge"
UPDATE_FUNCTION = "merger:update"
NODE_CLAIM_PREFIX = "node:claim:"
NODE_RELEASE_FUNCTION = "node:release"
STATUS_FUNCTION = "gatekeeper:status"
EXPLAIN_FUNCTION = "gatekeeper:explain"
MANAGE_FUNCTION = "gatekeeper:manage"
METRICS_FUNCTION = "gatekeeper:metrics"



def build_function(job: str, label: str | None = None) -> str:
    return f"{BUILD_PREFIX}{job}:{label}" if label else f"{BUILD_PREFIX}{job}"


def stop_function(worker: str) -> str:
    return f"{STOP_PREFIX}{worker}"


def node_claim_function(label: str) -> str:
    return f"{NODE_CLAIM_PREFIX}{label}"


def encode(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def decode(data: bytes | str | None) -> dict[str, Any]:
    """Decode a JSON object payload; anything else is a protocol error."""
    if data is None or data in (b"", ""):
        return {}
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("gearman payload is not a JSON object")
    return obj
