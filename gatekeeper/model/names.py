"""Rules for names and paths that the worker turns into paths, git refs,
ssh arguments or Gearman function names.

One definition, used twice: ``gatekeeper validate`` rejects a layout or
config that breaks them (with FILE:LINE), and the worker refuses a build
whose arguments break them (hostile or stale input). Each check returns the
value or raises :class:`BadName` with a one-line reason."""

from __future__ import annotations

import re


class BadName(ValueError):
    """A name or path breaks one of the rules below."""


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")
_REF = re.compile(r"^refs/[A-Za-z0-9_][A-Za-z0-9_./+-]*$")
JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
# git URLs the worker fetches from: no ext::, no option-looking strings.
GIT_URL = re.compile(r"^(git|ssh|https?|file)://[^\s]+$")
SAFE_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]-]+$")
SAFE_USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
MAX_FAILURE_OUTPUT = 20  # failure-output patterns of a job
MAX_PATTERN = 1000  # characters of one


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value) or ".." in value or value.endswith((".lock", "/", ".")):
        raise BadName(f"invalid {what}: {value!r}")
    return value


def check_project(name: str) -> str:
    """A project name, also used as a path inside the workspace."""
    return _check(_NAME, name, "project name")


def check_branch(name: str) -> str:
    return _check(_NAME, name, "branch name")


def check_ref(ref: str) -> str:
    return _check(_REF, ref, "git ref")


def check_job_name(name: str) -> str:
    """A job name: part of a Gearman function name and of the log path."""
    if not JOB_NAME.match(name):
        raise BadName(f"invalid job name {name!r}: letters, digits and _.+- only "
                      "(it becomes a Gearman function name and a log directory)")
    return name


def check_relative_path(path: str, what: str) -> str:
    """A path relative to the workspace that cannot leave it."""
    parts = path.split("/")
    if path.startswith("/"):
        raise BadName(f"invalid {what} {path!r}: must be relative to the workspace")
    if (not path or path.startswith("-") or ".." in parts or "\x00" in path
            or any(p == "" for p in parts[:-1])):
        raise BadName(f"invalid {what} {path!r}: must stay inside the workspace "
                      "(no '..', no leading '-', no empty parts)")
    return path


def check_artifact(path: str) -> str:
    if not path or path.startswith("-") or "\x00" in path or ".." in path.split("/"):
        raise BadName(f"invalid artifact path {path!r}: no '..' and no leading '-'")
    return path


def check_git_url(url: str, what: str = "git URL") -> str:
    if not GIT_URL.match(url):
        raise BadName(f"invalid {what} {url!r}: expected git://, ssh://, http(s):// or "
                      "file:// and no spaces")
    return url
