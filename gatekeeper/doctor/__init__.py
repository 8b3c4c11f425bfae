"""``gatekeeper doctor``: checks a site against its config, one line per check.

``checks.py`` runs each probe and turns what it finds into a :class:`Check`
(OK, WARN or FAIL and a one-line detail); ``gerrit.py`` holds the probes
that talk to Gerrit. No probe prints a secret: keys are named by path,
database URLs are shown with the password replaced."""
