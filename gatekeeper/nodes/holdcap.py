"""How many nodes of a label failed builds may hold (pure).

A held node is out of rotation for hours: with a few static nodes, three
failures would stop a site. So a build's hold is granted only while, for
each label of the node, at least one other node stays in service and the
held nodes stay within ``max_held`` (a fraction of the label's nodes).
Operator holds (``gatekeeper nodes hold``, autohold requests) are explicit
and not capped."""

from __future__ import annotations

DEFAULT_MAX_HELD = 0.5  # of a label's nodes; 1 node: never held, 2-3: one, 4: two


def hold_refusal(label: str, total: int, held: int, max_held: float) -> str | None:
    """None if one more node of ``label`` (``total`` nodes, ``held`` held
    already) may be held; else why not, in words for the log."""
    if total - held <= 1:
        return (f"it is the last {label} node in service ({held} of {total} held)")
    if held + 1 > max_held * total:
        return (f"{held} of {total} {label} nodes are held already "
                f"(max_held {max_held:g} of a label's nodes)")
    return None
