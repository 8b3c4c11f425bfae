"""The compiled layout: what ``gatekeeper.layout.loader`` produces from YAML.

Everything here is resolved: templates are expanded, matrix jobs are
expanded into variants, regexes are compiled, cross-references checked. The
scheduler core reads only these objects, never raw YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from gatekeeper.layout.literals import CommentFilter
from gatekeeper.layout.strategy import StrategyConfig

Manager = Literal["independent", "dependent", "serial"]

# Variables a reporter message template (str.format) may use; the core fills
# every one of them when it reports (see doc/layout.md):
#   pipeline   pipeline name            change   "NUMBER,PATCHSET" (or the ref)
#   project    project name             branch   target branch
#   number     change number ("" for a ref)      patchset  patch set ("" for a ref)
#   jobs       the job result list, one line per job (name, url, result, voting)
#   status_url the status page URL      reason   why the item failed or was dequeued ("" if none)
MESSAGE_VARIABLES = (
    "pipeline", "change", "project", "branch", "number", "patchset", "jobs", "status_url", "reason",
)
# Variables of a job's success-url/failure-url pattern: the per-item ones
# above plus the job name and the build's UUID.
URL_VARIABLES = (
    "pipeline", "change", "project", "branch", "number", "patchset", "status_url", "job", "uuid",
)
Precedence = Literal["low", "normal", "high"]


# Old Gerrit (2.x) sent short category codes in events; map them to the
# label names (as Zuul's normalizeCategory did).
LABEL_ALIASES = {"crvw": "code-review", "vrif": "verified", "aprv": "approved"}


def normalize_label(label: str) -> str:
    low = label.strip().lower()
    return LABEL_ALIASES.get(low, low)


@dataclass(frozen=True)
class ApprovalMatch:
    """An approval an event must carry (trigger ``approvals``) or a change must
    have (``require``/``reject``). ``values`` empty means any value."""

    label: str  # compared case-insensitively with Gerrit's label name
    values: tuple[int, ...] = ()
    username: re.Pattern[str] | None = None
    email: re.Pattern[str] | None = None
    # require/reject only: the vote must be newer/older than this many seconds
    newer_than: int | None = None
    older_than: int | None = None
    # ``label`` normalized once, when the layout is loaded
    norm: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", normalize_label(self.label))


@dataclass(frozen=True)
class GerritTrigger:
    """One entry of a pipeline's ``trigger: gerrit:`` list; all set filters must match."""

    events: tuple[str, ...]
    branches: tuple[re.Pattern[str], ...] = ()
    refs: tuple[re.Pattern[str], ...] = ()
    approvals: tuple[ApprovalMatch, ...] = ()  # the event must carry one of these
    comments: tuple[re.Pattern[str], ...] = ()  # the comment must match one (re.search)
    usernames: tuple[re.Pattern[str], ...] = ()
    emails: tuple[re.Pattern[str], ...] = ()
    require_approvals: tuple[ApprovalMatch, ...] = ()  # the change must have all of these
    reject_approvals: tuple[ApprovalMatch, ...] = ()  # the change must have none of these
    ignore_deletes: bool = True  # ref-updated that deletes a ref
    # ``comments`` with a literal prefilter each, derived once at layout load
    comment_filters: tuple[CommentFilter, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "comment_filters",
                           tuple(CommentFilter(p) for p in self.comments))


@dataclass(frozen=True)
class TimerTrigger:
    cron: str  # five-field cron expression, validated with croniter


DEFAULT_SUBJECT = "{pipeline}: {result} for {project} {branch}"


@dataclass(frozen=True)
class MailAction:
    """A digest mail at one point of an item's life: one mail for the item's
    whole build set (every job in it), never one per job."""

    to: tuple[str, ...]
    sender: str | None = None  # From:; None: the config's smtp.from
    subject: str = DEFAULT_SUBJECT  # template: MESSAGE_VARIABLES and {result}


@dataclass(frozen=True)
class ReporterAction:
    """What to tell Gerrit (and whom to mail) at one point of an item's life."""

    labels: dict[str, int] = field(default_factory=dict)  # {"Verified": 2}
    submit: bool = False
    message: str | None = None  # template; see doc/layout.md for the variables
    send: bool = True  # False: nothing to Gerrit (no comment, no vote)
    smtp: MailAction | None = None  # also (or only, for ref items) a mail


@dataclass(frozen=True)
class WindowConfig:
    window: int = 20  # initial number of actively tested items (0 = unlimited)
    floor: int = 3
    increase_type: Literal["linear", "exponential"] = "linear"
    increase_factor: int = 1
    decrease_type: Literal["linear", "exponential"] = "exponential"
    decrease_factor: int = 2
    ceiling: int = 0  # the window never grows beyond this (0 = no ceiling)

    def capped(self, window: int) -> int:
        return min(window, self.ceiling) if self.ceiling else window


@dataclass(frozen=True)
class PipelineRequire:
    """Conditions on the change for it to enter (checked on every trigger)."""

    open: bool | None = None
    current_patchset: bool | None = None
    status: tuple[str, ...] = ()
    approvals: tuple[ApprovalMatch, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    name: str
    manager: Manager
    description: str = ""
    source: str = "gerrit"
    precedence: Precedence = "normal"
    gerrit_triggers: tuple[GerritTrigger, ...] = ()
    timer_triggers: tuple[TimerTrigger, ...] = ()
    require: PipelineRequire = field(default_factory=PipelineRequire)
    reject: PipelineRequire = field(default_factory=PipelineRequire)
    start: ReporterAction | None = None
    success: ReporterAction | None = None
    failure: ReporterAction | None = None
    merge_failure: ReporterAction | None = None  # defaults to ``failure`` when None
    dequeue_on_new_patchset: bool = True
    fail_fast: bool = False
    window: WindowConfig = field(default_factory=WindowConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)  # dependent only
    header: str | None = None  # prepended to every report message
    footer: str | None = None  # appended to every report message


@dataclass(frozen=True)
class Job:
    name: str
    label: str | None = None  # node label; None: only another Gearman worker can serve build:JOB
    run: str | None = None  # script executed on the node, relative to the workspace
    timeout: int | None = None  # seconds
    voting: bool = True
    attempts: int = 3  # launches tried when a build is LOST, NODE_FAILURE or ERROR (never FAILURE)
    branches: tuple[re.Pattern[str], ...] = ()  # run only for these branches
    files: tuple[re.Pattern[str], ...] = ()  # run only if a changed file matches
    irrelevant_files: tuple[re.Pattern[str], ...] = ()  # skip if all changed files match
    parameters: dict[str, str] = field(default_factory=dict)  # env for the script
    artifacts: tuple[str, ...] = ()  # extra paths on the node to collect as logs
    projects: tuple[str, ...] = ()  # extra projects cloned into the workspace
    success_message: str | None = None
    failure_message: str | None = None
    success_url: str | None = None  # pattern; default: the build's log URL
    failure_url: str | None = None
    hold_on_failure: bool = True
    # A line of the job's output matching one of these: the build fails, known
    # while it still runs (the gate can act on it before the job ends).
    failure_output: tuple[re.Pattern[str], ...] = ()
    # Matrix expansion: the name of the job as written and this variant's axis values.
    variant_of: str | None = None
    variant: dict[str, str] = field(default_factory=dict)

    def changes_match(self, files: list[str] | None) -> bool:
        """File matchers: None (unknown) always matches."""
        if files is None:
            return True
        if self.files and not any(p.search(f) for p in self.files for f in files):
            return False
        if self.irrelevant_files and files and all(
            any(p.search(f) for p in self.irrelevant_files) for f in files
        ):
            return False
        return True

    def branch_matches(self, branch: str | None) -> bool:
        if not self.branches or branch is None:
            return True
        return any(p.search(branch) for p in self.branches)


@dataclass(frozen=True)
class JobTree:
    """A node in a project's job tree: ``job`` runs, and its ``children``
    run only after it succeeds. The root has ``job = None``."""

    job: str | None = None
    children: tuple[JobTree, ...] = ()

    def job_names(self) -> list[str]:
        names = [self.job] if self.job else []
        for c in self.children:
            names.extend(c.job_names())
        return names


@dataclass(frozen=True)
class Project:
    name: str
    pipelines: dict[str, JobTree] = field(default_factory=dict)  # pipeline -> job tree
    queue: str | None = None  # shared change queue name for dependent pipelines
    merge_mode: Literal["merge-resolve", "merge", "cherry-pick"] = "merge-resolve"
    templates: tuple[str, ...] = ()  # names of the templates applied (for display)


@dataclass(frozen=True)
class Layout:
    pipelines: dict[str, Pipeline]  # insertion order = layout order
    jobs: dict[str, Job]  # every concrete job name (matrix variants expanded)
    projects: dict[str, Project]
    # base matrix job name -> its variant names, for references to the base name
    matrices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the layout files this came from
    # The core's memo of job selections (pipeline, project, branch, files) ->
    # jobs; a layout never changes, so neither do they.
    selections: dict[tuple[object, ...], list[object]] = field(
        default_factory=dict, compare=False, repr=False)
    # The core's index of gerrit triggers by event type (core/filters.py).
    trigger_index: dict[str, tuple[object, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    def queue_name(self, project: str) -> str:
        """Projects without an explicit queue each gate alone."""
        p = self.projects.get(project)
        return (p.queue if p and p.queue else project)
