"""match_trigger: decisions with reasons (the API behind `gatekeeper events`)."""

import re

from gatekeeper.core.filters import check_requirements, match_trigger
from gatekeeper.layout.model import (
    ApprovalMatch,
    GerritTrigger,
    Pipeline,
    PipelineRequire,
    TimerTrigger,
)
from gatekeeper.model.change import Approval, Change, Ref
from gatekeeper.model.events import EventApproval, TriggerEvent

NOW = 1_700_000_000.0


def pipe(*triggers, require=PipelineRequire(), reject=PipelineRequire(), timers=()):
    return Pipeline("gate", "dependent", gerrit_triggers=tuple(triggers), require=require,
                    reject=reject, timer_triggers=tuple(timers))


def change(**kw):
    base = dict(project="p", branch="master", number=5, patchset=2)
    base.update(kw)
    return Change(**base)


def ev(type_="comment-added", **kw):
    return TriggerEvent(type_, project="p", branch=kw.pop("branch", "master"),
                        change_number=5, patchset=2, timestamp=NOW, **kw)


def test_event_type_mismatch_explained():
    m = match_trigger(pipe(GerritTrigger(("patchset-created",))), ev(), change())
    assert not m.matched
    assert m.reasons == ["trigger #1 does not match: event type comment-added is not one "
                         "of patchset-created"]


def test_approval_in_event():
    t = GerritTrigger(("comment-added",), approvals=(ApprovalMatch("Workflow", (1,)),))
    assert match_trigger(pipe(t), ev(approvals=(EventApproval("Workflow", 1, 0),)), change())
    m = match_trigger(pipe(t), ev(approvals=(EventApproval("Code-Review", 2, 0),)), change())
    assert not m.matched
    assert "the event carries Code-Review +2; it needs a new vote Workflow +1" in m.reasons[0]
    # old short category codes are normalized; label names compare case-insensitively
    t2 = GerritTrigger(("comment-added",), approvals=(ApprovalMatch("Approved", (1,)),))
    assert match_trigger(pipe(t2), ev(approvals=(EventApproval("APRV", 1),)), change())
    assert match_trigger(pipe(t), ev(approvals=(EventApproval("workflow", 1),)), change())
    assert not match_trigger(pipe(t2), ev(approvals=(EventApproval("Workflow", 1),)), change())


def test_comment_regex_uses_search():
    t = GerritTrigger(("comment-added",), comments=(re.compile(r"(?m)^\s*recheck$"),))
    assert match_trigger(pipe(t), ev(comment="Patch Set 2:\n\nrecheck"), change())
    m = match_trigger(pipe(t), ev(comment="looks good"), change())
    assert not m and "the comment does not match" in m.reasons[0]


def test_branch_username_email_filters():
    t = GerritTrigger(("comment-added",), branches=(re.compile(r"^stable/"),),
                      usernames=(re.compile("^jenkins$"),), emails=(re.compile("@example"),))
    m = match_trigger(pipe(t), ev(account_username="bob", account_email="b@x.org"), change())
    assert not m.matched
    text = m.explain()
    assert "branch 'master' does not match ^stable/" in text
    assert "username 'bob' does not match ^jenkins$" in text
    assert "email 'b@x.org' does not match @example" in text
    ok = ev(branch="stable/1", account_username="jenkins", account_email="j@example.org")
    assert match_trigger(pipe(t), ok, change(branch="stable/1"))


def test_require_and_reject_approvals_on_change():
    t = GerritTrigger(("comment-added",),
                      require_approvals=(ApprovalMatch("Verified", (1, 2),
                                                       username=re.compile("^ci$")),),
                      reject_approvals=(ApprovalMatch("Code-Review", (-2,)),))
    good = change(approvals=[Approval("Verified", 1, "ci")])
    assert match_trigger(pipe(t), ev(), good)
    m = match_trigger(pipe(t), ev(), change(approvals=[Approval("Verified", 1, "bob")]))
    assert "lacks the required vote Verified +1/+2 by username ~ /^ci$/" in m.explain()
    vetoed = change(approvals=[Approval("Verified", 1, "ci"), Approval("Code-Review", -2, "x")])
    assert "has the rejected vote Code-Review -2" in match_trigger(pipe(t), ev(), vetoed).explain()


def test_newer_than_uses_now():
    t = GerritTrigger(("comment-added",),
                      require_approvals=(ApprovalMatch("Verified", newer_than=3600),))
    fresh = change(approvals=[Approval("Verified", 1, granted_on=int(NOW) - 60)])
    stale = change(approvals=[Approval("Verified", 1, granted_on=int(NOW) - 7200)])
    assert match_trigger(pipe(t), ev(), fresh, now=NOW)
    assert not match_trigger(pipe(t), ev(), stale, now=NOW)


def test_pipeline_require_and_reject():
    t = GerritTrigger(("comment-added",))
    p = pipe(t, require=PipelineRequire(open=True, current_patchset=True,
                                        approvals=(ApprovalMatch("Code-Review", (2,)),)),
             reject=PipelineRequire(approvals=(ApprovalMatch("Verified", (-1, -2)),)))
    m = match_trigger(p, ev(), change(is_current_patchset=False, status="ABANDONED"))
    text = m.explain()
    assert "trigger #1 (comment-added) matches" in text
    assert "the change is not open" in text
    assert "patchset 2 is not current" in text
    assert "it lacks the vote Code-Review +2" in text
    ok = change(approvals=[Approval("Code-Review", 2)])
    assert match_trigger(p, ev(), ok)
    rejected = change(approvals=[Approval("Code-Review", 2), Approval("Verified", -1)])
    assert "rejects it: it has the vote Verified -1/-2" in match_trigger(p, ev(), rejected).explain()


def test_ref_updated_ignore_deletes_and_refs():
    t = GerritTrigger(("ref-updated",), refs=(re.compile(r"^refs/heads/"),))
    p = Pipeline("post", "serial", gerrit_triggers=(t,))
    e = TriggerEvent("ref-updated", project="p", ref="refs/heads/master", newrev="a" * 40)
    assert match_trigger(p, e, Ref("p", "refs/heads/master", newrev="a" * 40))
    d = TriggerEvent("ref-updated", project="p", ref="refs/heads/x", newrev="0" * 40)
    assert "the ref was deleted (ignore-deletes)" in match_trigger(p, d, Ref("p", "refs/heads/x")).explain()
    tag = TriggerEvent("ref-updated", project="p", ref="refs/tags/1.0", newrev="a" * 40)
    assert "ref 'refs/tags/1.0' does not match ^refs/heads/" in match_trigger(p, tag, None).explain()


def test_timer_events():
    p = pipe(timers=(TimerTrigger("0 2 * * *"),))
    assert match_trigger(p, TriggerEvent("timer", pipeline="gate", source="timer"), Ref("p", "refs/heads/master"))
    assert not match_trigger(p, TriggerEvent("timer", pipeline="other", source="timer"), None)


def test_unknown_change_cannot_meet_requirements():
    p = pipe(GerritTrigger(("comment-added",)))
    m = match_trigger(p, ev(), None)
    assert not m.matched and "unknown to the source" in m.explain()
    assert check_requirements(p, Ref("p", "refs/heads/master")).matched


# --- triggered_pipelines: the scheduler's word-free decision ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gatekeeper.core.filters import triggered_pipelines  # noqa: E402
from gatekeeper.layout.loader import load_layout_text  # noqa: E402

_LAYOUT_YAML = r"""
pipelines:
  - name: check
    manager: independent
    trigger:
      gerrit:
        - event: patchset-created
        - event: comment-added
          comment: (?i)^(Patch Set [0-9]+:)?( [\w\\+-]*)*(\n\n)?\s*(recheck|reverify)
        - event: [change-restored, draft-published]
          branch: ^stable/.*$
        - event: comment-added
          username: ^ci$
          approval: [{Verified: [-1, -2]}]
    reject:
      approval: [{Verified: -2}]
  - name: gate
    manager: dependent
    trigger:
      gerrit:
        - event: comment-added
          approval: [{Workflow: 1}, {vrif: 2}]
          require-approval: [{Code-Review: [2]}]
          reject-approval: [{Code-Review: -2}]
    require:
      open: true
      current-patchset: true
      approval: [{Code-Review: 2, newer-than: 3600}]
  - name: post
    manager: serial
    trigger:
      gerrit:
        - event: ref-updated
          ref: ^refs/heads/.*$
        - event: ref-updated
          ref: ^refs/tags/.*$
          ignore-deletes: false
          email: '@example\.org$'
  - name: nightly
    manager: independent
    trigger:
      timer:
        - time: "0 2 * * *"
jobs:
  - name: ^.*$
    label: debian
projects:
  - name: p
    check: [unit]
    gate: [unit]
    post: [docs]
    nightly: [unit]
"""
_LAYOUT = load_layout_text(_LAYOUT_YAML, "filters-layout.yaml")
_LABELS = st.sampled_from(["Workflow", "workflow", "Code-Review", "CRVW", "Verified", "vrif"])
_EV_APPROVALS = st.lists(st.builds(EventApproval, _LABELS, st.integers(-2, 2),
                                   st.none() | st.integers(-2, 2)), max_size=3)
_APPROVALS = st.lists(st.builds(Approval, _LABELS, st.integers(-2, 2), st.none(), st.none(),
                                st.none() | st.integers(int(NOW) - 7200, int(NOW))), max_size=3)
_TYPES = st.sampled_from(["comment-added", "patchset-created", "ref-updated", "change-restored",
                          "draft-published", "change-merged", "timer"])


@settings(max_examples=400, deadline=None)
@given(type_=_TYPES, approvals=_EV_APPROVALS, change_approvals=_APPROVALS,
       comment=st.sampled_from([None, "recheck", "Patch Set 1:\n\nrecheck", "lgtm"]),
       branch=st.sampled_from([None, "master", "stable/x"]),
       ref=st.sampled_from([None, "refs/heads/master", "refs/tags/1.0", "refs/changes/1"]),
       newrev=st.sampled_from([None, "0" * 40, "a" * 40]),
       user=st.sampled_from([None, "ci", "dev"]),
       email=st.sampled_from([None, "a@example.org", "b@other.net"]),
       status=st.sampled_from(["NEW", "MERGED"]), current=st.booleans(),
       subject=st.sampled_from(["change", "ref", "none"]),
       pipeline=st.sampled_from([None, "nightly", "check"]), source=st.sampled_from(["gerrit", "x"]))
def test_triggered_pipelines_is_match_trigger(type_, approvals, change_approvals, comment,
                                             branch, ref, newrev, user, email, status, current,
                                             subject, pipeline, source):
    e = TriggerEvent(type_, project="p", branch=branch, ref=ref, change_number=5, patchset=2,
                     newrev=newrev, comment=comment, approvals=tuple(approvals),
                     account_username=user, account_email=email, timestamp=NOW,
                     pipeline=pipeline, source=source)
    c: Change | Ref | None = {
        "change": change(status=status, is_current_patchset=current,
                         approvals=change_approvals),
        "ref": Ref("p", ref or "refs/heads/master", newrev=newrev or ""),
        "none": None}[subject]
    want = [p.name for p in _LAYOUT.pipelines.values() if match_trigger(p, e, c, now=NOW)]
    assert triggered_pipelines(_LAYOUT, e, c, now=NOW) == want
