"""Persistent node and image records, and the small repository around them.

Every state change is a conditional UPDATE (``... WHERE id = ? AND state IN
(...)``) so two threads or processes can never both move a node out of the
same state: that is what makes a claim atomic. Times are epoch seconds from
the caller's clock (floats), so the pure planner can run on virtual time.
Only portable SQL (no SQLite-only constructs): PostgreSQL runs it as is."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gatekeeper.model.states import ImageState, NodeState

log = logging.getLogger("gatekeeper.nodes.db")

# Every node state but the last (deleted rows are kept for history).
LIVE_STATES = tuple(s for s in NodeState if s != NodeState.DELETED)

class Base(DeclarativeBase):
    pass


class NodeRow(Base):
    __tablename__ = "pool_nodes"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(sa.String(255), index=True)
    provider: Mapped[str] = mapped_column(sa.String(255), index=True)
    image: Mapped[str] = mapped_column(sa.String(255), default="")
    image_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    host: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    port: Mapped[int] = mapped_column(sa.Integer, default=22)
    username: Mapped[str] = mapped_column(sa.String(255), default="")
    # A path, never a key; the column keeps the name it was created with.
    private_key: Mapped[str] = mapped_column("key_ref", sa.String(1024), key="private_key",
                                             default="")
    host_key: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    state: Mapped[str] = mapped_column(sa.String(32), index=True)
    state_time: Mapped[float] = mapped_column(sa.Float)
    hold_until: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    # Free text as typed (the CLI passes an operator's reason): TEXT, since
    # PostgreSQL enforces VARCHAR lengths that SQLite ignores.
    hold_reason: Mapped[str] = mapped_column(sa.Text, default="")
    build: Mapped[str] = mapped_column(sa.String(255), default="")
    project: Mapped[str] = mapped_column(sa.String(255), default="")
    job: Mapped[str] = mapped_column(sa.String(255), default="")
    static_name: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    workdir: Mapped[str | None] = mapped_column(sa.String(1024), nullable=True)
    created: Mapped[float] = mapped_column(sa.Float)


class ImageRow(Base):
    __tablename__ = "pool_images"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(255), index=True)
    image: Mapped[str] = mapped_column(sa.String(255), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    external_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    template_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    state: Mapped[str] = mapped_column(sa.String(32), index=True)
    state_time: Mapped[float] = mapped_column(sa.Float)
    created: Mapped[float] = mapped_column(sa.Float)


class AutoholdRow(Base):
    __tablename__ = "pool_autoholds"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(255))
    job: Mapped[str] = mapped_column(sa.String(255))
    count: Mapped[int] = mapped_column(sa.Integer)
    hold_for: Mapped[float | None] = mapped_column(sa.Float, nullable=True)  # None = forever
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created: Mapped[float] = mapped_column(sa.Float)


# An autohold request's developer SSH key (see devkeys.py).
autohold_keys = sa.Table(
    "pool_autohold_keys", Base.metadata,
    sa.Column("autohold", sa.Integer, primary_key=True),
    sa.Column("ssh_key", sa.Text, nullable=False),
)


# A worker's own static node (worker.nodes): the worker holds the truth in
# memory and writes it here; ``gatekeeper nodes`` reads it and writes holds
# and releases, which the worker picks up (gatekeeper/worker/noderecords.py).
# Apart from pool_nodes: the pool service must never claim, reset or delete them.
worker_nodes = sa.Table(
    "worker_nodes", Base.metadata,
    sa.Column("worker", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("labels", sa.String(1024), nullable=False),  # comma-separated
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),  # ready, in-use, hold
    sa.Column("state_time", sa.Float, nullable=False),
    sa.Column("build", sa.String(255), nullable=False),
    sa.Column("hold_until", sa.Float, nullable=True),  # None while held: until released
    sa.Column("hold_reason", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class Node:
    """A snapshot of one node record (what the planner and callers see)."""

    id: int
    label: str
    provider: str
    state: NodeState
    state_time: float
    created: float
    image: str = ""
    image_id: int | None = None
    external_id: str | None = None
    host: str | None = None
    port: int = 22
    username: str = ""
    private_key: str = ""
    host_key: str | None = None
    hold_until: float | None = None
    hold_reason: str = ""
    build: str = ""
    project: str = ""
    job: str = ""
    static_name: str | None = None
    workdir: str | None = None  # where builds keep their files (None: the user's home)


@dataclass(frozen=True)
class Image:
    id: int
    provider: str
    image: str
    version: int
    state: ImageState
    state_time: float
    created: float
    external_id: str | None = None
    template_id: str | None = None


@dataclass(frozen=True)
class Autohold:
    id: int
    project: str
    job: str
    count: int
    hold_for: float | None
    reason: str
    created: float


def _snap(cls: Any, row: Any) -> Any:
    values = {f.name: getattr(row, f.name) for f in fields(cls)}
    if cls is Node:
        values["state"] = NodeState(values["state"])
    elif cls is Image:
        values["state"] = ImageState(values["state"])
    return cls(**values)


def _inserted_id(res: CursorResult[Any]) -> int:
    """The new row's integer primary key (every pool table has one)."""
    pk = res.inserted_primary_key
    assert pk is not None, "INSERT without a primary key"
    return int(pk[0])


class PoolStore:
    """Repository of node, image and autohold records on one Engine."""

    def __init__(self, engine: Engine):
        """Brings the pool's schema on ``engine`` to this release's head
        (every pool process may be the first to open the database)."""
        from gatekeeper.nodes.migrate import upgrade  # it imports these tables

        self.engine = engine
        upgrade(engine)

    # -- nodes ------------------------------------------------------------
    def create_node(self, label: str, provider: str, now: float, state: NodeState = NodeState.BUILDING,
                    **values: object) -> Node:
        with self.engine.begin() as conn:
            res = conn.execute(sa.insert(NodeRow).values(
                label=label, provider=provider, state=state, state_time=now, created=now,
                **_defaults(values)))
            node_id = _inserted_id(res)
        node = self.get_node(node_id)
        assert node is not None
        return node

    def get_node(self, node_id: int) -> Node | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(NodeRow.__table__).where(NodeRow.id == node_id)).first()
        return _snap(Node, row) if row else None

    def list_nodes(self, states: Iterable[NodeState] | None = None, label: str | None = None,
                   provider: str | None = None) -> list[Node]:
        q = sa.select(NodeRow.__table__).order_by(NodeRow.id)
        if states is not None:
            q = q.where(NodeRow.state.in_(list(states)))
        if label is not None:
            q = q.where(NodeRow.label == label)
        if provider is not None:
            q = q.where(NodeRow.provider == provider)
        with self.engine.connect() as conn:
            return [_snap(Node, r) for r in conn.execute(q)]

    def update_node(self, node_id: int, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(NodeRow).where(NodeRow.id == node_id).values(**values))

    def transition(self, node_id: int, from_states: Iterable[NodeState], to_state: NodeState,
                   now: float, **values: object) -> bool:
        """Move the node to ``to_state`` only if it is in one of
        ``from_states``; True if this call did it."""
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(NodeRow)
                .where(NodeRow.id == node_id, NodeRow.state.in_(list(from_states)))
                .values(state=to_state, state_time=now, **values))
            return res.rowcount == 1

    def claim_ready(self, label: str, build: str, now: float, project: str = "",
                    job: str = "") -> Node | None:
        """Atomically take the longest-ready node of ``label`` for ``build``.

        One statement (``UPDATE ... WHERE id = (oldest ready) AND state =
        'ready' RETURNING ...``, SQLite >= 3.35 and PostgreSQL alike): the
        state condition makes two concurrent claims never share a node. On
        SQLite writers are serialized, so a claim only loses to a commit it
        could not see; on PostgreSQL concurrent claims would all pick the same
        oldest node and all but one come back empty, so the pick skips rows
        another claim has locked. A loser retries while ready nodes remain:
        every lost round means another claim (or transition) took a node, so
        the bound is only a guard."""
        stmt = claim_statement(label, build, now, project, job)
        for _ in range(100):  # lost a race: the next oldest
            with self.engine.begin() as conn:
                row = conn.execute(stmt).first()
                if row is not None:
                    return _snap(Node, row)
                left = conn.execute(sa.select(sa.func.count()).where(
                    NodeRow.label == label, NodeRow.state == NodeState.READY)).scalar()
            if not left:
                return None
        return None

    # -- images -----------------------------------------------------------
    def create_image(self, provider: str, image: str, now: float) -> Image:
        with self.engine.begin() as conn:
            top = conn.execute(
                sa.select(sa.func.max(ImageRow.version))
                .where(ImageRow.provider == provider, ImageRow.image == image)).scalar()
            res = conn.execute(sa.insert(ImageRow).values(
                provider=provider, image=image, version=(top or 0) + 1, state=ImageState.BUILDING,
                state_time=now, created=now))
            image_id = _inserted_id(res)
        img = self.get_image(image_id)
        assert img is not None
        return img

    def get_image(self, image_id: int) -> Image | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(ImageRow.__table__).where(ImageRow.id == image_id)).first()
        return _snap(Image, row) if row else None

    def list_images(self, states: Iterable[ImageState] | None = None, provider: str | None = None,
                    image: str | None = None) -> list[Image]:
        q = sa.select(ImageRow.__table__).order_by(ImageRow.id)
        if states is not None:
            q = q.where(ImageRow.state.in_(list(states)))
        if provider is not None:
            q = q.where(ImageRow.provider == provider)
        if image is not None:
            q = q.where(ImageRow.image == image)
        with self.engine.connect() as conn:
            return [_snap(Image, r) for r in conn.execute(q)]

    def transition_image(self, image_id: int, from_states: Iterable[ImageState],
                         to_state: ImageState, now: float, **values: object) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(ImageRow)
                .where(ImageRow.id == image_id, ImageRow.state.in_(list(from_states)))
                .values(state=to_state, state_time=now, **values))
            return res.rowcount == 1

    def update_image(self, image_id: int, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(ImageRow).where(ImageRow.id == image_id).values(**values))

    # -- autoholds --------------------------------------------------------
    def add_autohold(self, project: str, job: str, count: int, hold_for: float | None,
                     reason: str, now: float) -> Autohold:
        with self.engine.begin() as conn:
            res = conn.execute(sa.insert(AutoholdRow).values(
                project=project, job=job, count=count, hold_for=hold_for, reason=reason,
                created=now))
            ah_id = _inserted_id(res)
        return next(a for a in self.list_autoholds() if a.id == ah_id)

    def list_autoholds(self) -> list[Autohold]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(AutoholdRow.__table__).order_by(AutoholdRow.id))
            return [_snap(Autohold, r) for r in rows]

    def delete_autohold(self, ah_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                sa.delete(AutoholdRow).where(AutoholdRow.id == ah_id)).rowcount == 1

    def consume_autohold(self, project: str, job: str) -> Autohold | None:
        """Use up one hold of the first matching request (atomically).

        ``count = count - 1 WHERE count > 0``, not compare-and-set on the
        count read before: a concurrent consumer then waits for the row and
        decrements the new value (PostgreSQL re-checks the condition on it)
        instead of missing a request that still has holds left. The returned
        record's ``count`` is the one before this use."""
        for ah in self.list_autoholds():
            if ah.project != project or ah.job != job or ah.count <= 0:
                continue
            with self.engine.begin() as conn:
                left = conn.execute(
                    sa.update(AutoholdRow)
                    .where(AutoholdRow.id == ah.id, AutoholdRow.count > 0)
                    .values(count=AutoholdRow.count - 1)
                    .returning(AutoholdRow.count)).scalar()
                if left is None:  # used up meanwhile: the next request
                    continue
                if left == 0:
                    conn.execute(sa.delete(AutoholdRow).where(AutoholdRow.id == ah.id))
                return replace(ah, count=left + 1)
        return None


def claim_statement(label: str, build: str, now: float, project: str = "",
                    job: str = "") -> sa.Update:
    """``UPDATE pool_nodes SET state='in-use', ... WHERE id = (SELECT id ...
    oldest ready of label LIMIT 1 FOR UPDATE SKIP LOCKED) AND state = 'ready'
    RETURNING *``. SQLite has no row locks; its compiler leaves the FOR
    UPDATE clause out (its writers are serialized anyway)."""
    oldest = (sa.select(NodeRow.id)
              .where(NodeRow.label == label, NodeRow.state == NodeState.READY)
              .order_by(NodeRow.state_time, NodeRow.id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    return (sa.update(NodeRow)
            .where(NodeRow.id == oldest, NodeRow.state == NodeState.READY)
            .values(state=NodeState.IN_USE, state_time=now, build=build, project=project, job=job)
            .returning(*NodeRow.__table__.columns))


def _defaults(values: dict[str, object]) -> dict[str, object]:
    known = {c.key for c in NodeRow.__table__.columns}
    bad = set(values) - known
    if bad:
        raise TypeError(f"unknown node fields: {sorted(bad)}")
    return values
