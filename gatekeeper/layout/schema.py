"""The voluptuous schema of one layout file (the YAML spelling lives here).

The schema only checks each file on its own: shapes, types, choices,
regexes, cron expressions and message templates. Cross-references (unknown
jobs/templates/pipelines/labels, duplicates across files) are checked by the
loader after every file passed. Spelling is kebab-case, as in Zuul."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Hashable
from typing import Any

import voluptuous as vol
from croniter import croniter

from gatekeeper.layout.model import MESSAGE_VARIABLES, URL_VARIABLES
from gatekeeper.layout.strategy import SCHEMA as STRATEGY
from gatekeeper.model.names import MAX_FAILURE_OUTPUT, MAX_PATTERN
from gatekeeper.model.states import MergeMode
from gatekeeper.yamlutil import type_name

GERRIT_EVENTS = (
    "patchset-created",
    "draft-published",
    "comment-added",
    "change-merged",
    "change-abandoned",
    "change-restored",
    "ref-updated",
    "topic-changed",
    "reviewer-added",
    "hashtags-changed",
    "wip-state-changed",
    "private-state-changed",
    "vote-deleted",
)
MANAGERS = ("independent", "dependent", "serial")
PRECEDENCES = ("low", "normal", "high")
WINDOW_TYPES = ("linear", "exponential")
# Keys of a project entry that are not pipeline names.
PROJECT_KEYS = ("name", "templates", "queue", "merge-mode", "description")
TEMPLATE_KEYS = ("name", "description")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def choice(*values: str) -> vol.Any:
    return vol.Any(*values, msg="must be one of: " + ", ".join(values))


def regex(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a regular expression (string)")
    try:
        re.compile(value)
    except re.error as e:
        raise vol.Invalid(f"bad regular expression {value!r}: {e}") from None
    return value


def cron(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a cron expression (string)")
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise vol.Invalid(
            f"bad cron expression {value!r} (expected 5 fields: minute hour day month weekday)"
        )
    return value


def duration(value: Any) -> int:
    """Seconds as an integer, or a string like ``90s``, ``30m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a duration (seconds, or e.g. 30m, 2h, 1d)")
    if isinstance(value, int):
        if value <= 0:
            raise vol.Invalid("duration must be positive")
        return value
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and int(m.group(1)) > 0:
            return int(m.group(1)) * _UNITS[m.group(2)]
    raise vol.Invalid(f"expected a duration (seconds, or e.g. 30m, 2h, 1d), not {value!r}")


def parse_duration(value: Any) -> int:
    return duration(value)


def _template(value: Any, known: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str):
        raise vol.Invalid(f"expected {what} (string)")
    for name in template_fields(value):
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in known:
            raise vol.Invalid(
                f"unknown template variable {{{root}}}; known: "
                + ", ".join("{" + v + "}" for v in known)
            )
    return value


def message_template(value: Any) -> str:
    """A str.format template using only the variables the core fills."""
    return _template(value, MESSAGE_VARIABLES, "a message template")


def url_template(value: Any) -> str:
    """A job's success-url/failure-url pattern."""
    return _template(value, URL_VARIABLES, "a URL pattern")


def template_fields(value: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as e:
        raise vol.Invalid(f"bad template {value!r}: {e} (write {{{{ and }}}} for literal braces)") from None
    out = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if field_name == "" or field_name.isdigit():
            raise vol.Invalid(f"bad template {value!r}: use named fields like {{pipeline}}")
        out.append(field_name)
    return out


def nonempty_str(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected str")
    if not value.strip():
        raise vol.Invalid("must not be empty")
    return value


def scalar(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    raise vol.Invalid("expected a string, number or boolean")


def _collect(errors: list[vol.Invalid], exc: vol.Invalid, prefix: list[Any]) -> None:
    items = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
    for err in items:
        err.prepend(prefix)
        errors.append(err)


def one_or_many(inner: Any, allow_empty: bool = False) -> Callable[[Any], list[Any]]:
    """A single value or a list of them; item errors keep their index."""
    schema = vol.Schema(inner)

    def validate(value: Any) -> list[Any]:
        if not isinstance(value, list):
            return [schema(value)]
        if not value and not allow_empty:
            raise vol.Invalid("must not be an empty list")
        out: list[Any] = []
        errors: list[vol.Invalid] = []
        for i, item in enumerate(value):
            try:
                out.append(schema(item))
            except vol.Invalid as e:
                _collect(errors, e, [i])
        if errors:
            raise vol.MultipleInvalid(errors)
        return out

    validate.inner = schema  # type: ignore[attr-defined]  # for yamlutil.keys_at
    return validate


def list_of(inner: Any) -> Callable[[Any], list[Any]]:
    """A list whose every item is checked (voluptuous' own ``[schema]``
    stops reporting after the first bad item)."""
    validate_items = one_or_many(inner, allow_empty=True)

    def validate(value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise vol.Invalid("expected a list")
        return validate_items(value)

    validate.inner = inner  # type: ignore[attr-defined]  # for yamlutil.keys_at
    return validate


def job_tree(value: Any) -> Any:
    """A list whose items are job names or ``{parent: children}`` mappings
    (one key each); children are a job name or such a list."""
    if isinstance(value, str):
        nonempty_str(value)
        return value
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of job names (or {job: [children]} mappings)")
    errors: list[vol.Invalid] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            if not item.strip():
                errors.append(vol.Invalid("job name must not be empty", path=[i]))
        elif isinstance(item, dict):
            if len(item) != 1:
                errors.append(
                    vol.Invalid(
                        "a job with children is a mapping with exactly one key "
                        "(the parent job name)",
                        path=[i],
                    )
                )
                continue
            (parent, children), = item.items()
            if not isinstance(parent, str) or not parent.strip():
                errors.append(vol.Invalid("expected a job name", path=[i]))
                continue
            if children is None:
                errors.append(
                    vol.Invalid("children missing (write the job name alone)", path=[i, parent])
                )
                continue
            try:
                job_tree(children)
            except vol.Invalid as e:
                _collect(errors, e, [i, parent])
        else:
            errors.append(
                vol.Invalid(f"expected a job name or {{job: [children]}}, got {type_name(item)}", path=[i])
            )
    if errors:
        raise vol.MultipleInvalid(errors)
    return value


def _approval_value(value: Any) -> Any:
    if isinstance(value, bool) or not (
        isinstance(value, int)
        or (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
    ):
        raise vol.Invalid("expected a vote value (integer) or a list of them")
    return value


def _has_label(value: dict[str, Any]) -> dict[str, Any]:
    if not any(k not in ("username", "email", "newer-than", "older-than") for k in value):
        raise vol.Invalid("needs at least one label, e.g. {Verified: 1}")
    return value


APPROVAL = vol.All(
    vol.Schema({vol.Extra: _approval_value}),
    vol.Length(min=1, msg="expected a label and a value, e.g. {Approved: 1}"),
)
REQUIRE_APPROVAL = vol.All(
    vol.Schema(
        {
            "username": regex,
            "email": regex,
            "newer-than": duration,
            "older-than": duration,
            vol.Extra: _approval_value,
        }
    ),
    _has_label,
)

GERRIT_TRIGGER = vol.Schema(
    {
        vol.Required("event"): one_or_many(choice(*GERRIT_EVENTS)),
        "branch": one_or_many(regex),
        "ref": one_or_many(regex),
        "approval": one_or_many(APPROVAL),
        "comment": one_or_many(regex),
        "username": one_or_many(regex),
        "email": one_or_many(regex),
        "require-approval": one_or_many(REQUIRE_APPROVAL),
        "reject-approval": one_or_many(REQUIRE_APPROVAL),
        "ignore-deletes": bool,
    }
)

TIMER_TRIGGER = vol.Schema({vol.Required("time"): cron})

TRIGGER = vol.All(
    vol.Schema({"gerrit": one_or_many(GERRIT_TRIGGER), "timer": one_or_many(TIMER_TRIGGER)}),
    vol.Length(min=1, msg="needs at least one trigger (gerrit or timer)"),
)

REQUIRE = vol.Schema(
    {
        "open": bool,
        "current-patchset": bool,
        "status": one_or_many(nonempty_str),
        "approval": one_or_many(REQUIRE_APPROVAL),
    }
)

def mail_address(value: Any) -> str:
    """One address, ``user@host``: no spaces, no newlines (header injection), no commas."""
    if (not isinstance(value, str) or value.count("@") != 1 or value.startswith("@")
            or value.endswith("@") or any(c in value for c in " \t\r\n,;<>\"")):
        raise vol.Invalid(f"expected a mail address like ci@example.org, not {value!r}")
    return value


def subject_template(value: Any) -> str:
    text = _template(value, (*MESSAGE_VARIABLES, "result"), "a subject template")
    if "\n" in text or "\r" in text:
        raise vol.Invalid("a subject is one line")
    return text


SMTP = vol.Schema(
    {
        vol.Required("to"): one_or_many(mail_address),
        "from": mail_address,
        "subject": subject_template,
    }
)

REPORTER = vol.Any(
    None,
    vol.Schema(
        {
            "labels": {nonempty_str: vol.All(int, msg="expected an integer vote")},
            "submit": bool,
            "message": message_template,
            "send": bool,
            "smtp": SMTP,
        }
    ),
)

PIPELINE = vol.Schema(
    {
        vol.Required("name"): nonempty_str,
        vol.Required("manager"): choice(*MANAGERS),
        "description": str,
        "source": choice("gerrit"),
        "precedence": choice(*PRECEDENCES),
        vol.Required("trigger"): TRIGGER,
        "require": REQUIRE,
        "reject": REQUIRE,
        "start": REPORTER,
        "success": REPORTER,
        "failure": REPORTER,
        "merge-failure": REPORTER,
        "dequeue-on-new-patchset": bool,
        "fail-fast": bool,
        "window": vol.All(int, vol.Range(min=0)),
        "window-floor": vol.All(int, vol.Range(min=1)),
        "window-ceiling": vol.All(int, vol.Range(min=1)),
        "window-increase-type": choice(*WINDOW_TYPES),
        "window-increase-factor": vol.All(int, vol.Range(min=1)),
        "window-decrease-type": choice(*WINDOW_TYPES),
        "window-decrease-factor": vol.All(int, vol.Range(min=1)),
        "strategy": STRATEGY,
        "header": message_template,
        "footer": message_template,
    }
)


def _matrix(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        raise vol.Invalid("expected a mapping of axis name to a list of values")
    errors: list[vol.Invalid] = []
    for axis, values in value.items():
        if not isinstance(axis, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", axis):
            errors.append(vol.Invalid("axis name must be an identifier", path=[axis]))
        elif not isinstance(values, list) or not values:
            errors.append(vol.Invalid("expected a non-empty list of values", path=[axis]))
        else:
            seen = set()
            for i, v in enumerate(values):
                if not isinstance(v, (str, int)) or isinstance(v, bool):
                    errors.append(vol.Invalid("expected a string or number", path=[axis, i]))
                elif str(v) in seen:
                    errors.append(vol.Invalid(f"duplicate value {v!r}", path=[axis, i]))
                elif not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(v)):
                    errors.append(
                        vol.Invalid("value must be letters, digits, or _ . + -", path=[axis, i])
                    )
                seen.add(str(v))
    if errors:
        raise vol.MultipleInvalid(errors)
    return value


_JOB_KEYS = vol.Schema(
    {
        vol.Required("name"): nonempty_str,
        "description": str,
        "label": nonempty_str,
        "run": nonempty_str,
        "timeout": duration,
        "voting": bool,
        "attempts": vol.All(int, vol.Range(min=1, max=100)),
        "branch": one_or_many(regex),
        "files": one_or_many(regex),
        "irrelevant-files": one_or_many(regex),
        "parameters": {vol.All(str, vol.Match(r"^[A-Za-z_][A-Za-z0-9_]*$", msg="parameter names must be identifiers")): scalar},
        "artifacts": one_or_many(nonempty_str),
        "projects": one_or_many(nonempty_str),
        "success-message": str,
        "failure-message": str,
        "success-url": url_template,
        "failure-url": url_template,
        "hold-on-failure": bool,
        "failure-output": vol.All(one_or_many(vol.All(regex, vol.Length(
            max=MAX_PATTERN, msg=f"at most {MAX_PATTERN} characters"))), vol.Length(
            max=MAX_FAILURE_OUTPUT, msg=f"at most {MAX_FAILURE_OUTPUT} patterns")),
        "matrix": _matrix,
        "matrix-exclude": one_or_many({vol.Extra: scalar}),
    }
)


def _exclusions(job: dict[str, Any]) -> dict[str, Any]:
    """``matrix-exclude`` entries name existing axes and values."""
    excludes = job.get("matrix-exclude")
    if excludes is None:
        return job
    matrix = job.get("matrix")
    if not matrix:
        raise vol.Invalid("matrix-exclude needs a matrix", path=["matrix-exclude"])
    entries = excludes if isinstance(excludes, list) else [excludes]
    errors: list[vol.Invalid] = []
    for i, entry in enumerate(entries):
        at: list[Hashable] = ["matrix-exclude", i] if isinstance(excludes, list) else ["matrix-exclude"]
        if not entry:
            errors.append(vol.Invalid("expected {axis: value, ...}", path=at))
        for axis, value in entry.items():
            if axis not in matrix:
                errors.append(vol.Invalid(f"{axis!r} is not a matrix axis", path=[*at, axis]))
            elif str(value) not in {str(v) for v in matrix[axis]}:
                errors.append(
                    vol.Invalid(f"{value!r} is not a value of axis {axis!r}", path=[*at, axis])
                )
    if errors:
        raise vol.MultipleInvalid(errors)
    return job


JOB = vol.All(_JOB_KEYS, _exclusions)


TEMPLATE_REF = vol.Any(
    nonempty_str,
    vol.Schema({vol.Required("name"): nonempty_str, vol.Extra: scalar}),
    msg="expected a template name or {name: TEMPLATE, PARAM: value, ...}",
)

PROJECT = vol.Schema(
    {
        vol.Required("name"): nonempty_str,
        "description": str,
        "templates": one_or_many(TEMPLATE_REF),
        "queue": nonempty_str,
        "merge-mode": choice(*(m.value for m in MergeMode)),
        vol.Extra: job_tree,  # pipeline name -> job tree; names checked by the loader
    }
)

PROJECT_TEMPLATE = vol.Schema(
    {
        vol.Required("name"): nonempty_str,
        "description": str,
        vol.Extra: job_tree,
    }
)

LAYOUT = vol.Schema(
    {
        "pipelines": list_of(PIPELINE),
        "jobs": list_of(JOB),
        "project-templates": list_of(PROJECT_TEMPLATE),
        "projects": list_of(PROJECT),
    }
)

