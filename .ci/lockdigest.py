"""Digest of what requirements.lock is compiled from, so a stale lock is caught offline.

    python3 .ci/lockdigest.py          print the digest of pyproject.toml + build requirements
    python3 .ci/lockdigest.py --check  exit 1 with a one-line hint when the lock was compiled
                                       from other inputs than the ones in the tree
Standard library only: it runs before the venv exists.
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
MARK = "# inputs-digest: "


def digest() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build": [
            line.strip()
            for line in (ROOT / ".ci" / "build-requirements.in").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ],
    }
    blob = json.dumps(inputs, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def recorded() -> str | None:
    if not LOCK.exists():
        return None
    for line in LOCK.read_text().splitlines():
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    return None


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        if recorded() != digest():
            print("bootstrap: requirements.lock does not match pyproject.toml "
                  "(dependencies changed): run `bash .ci/lock` and commit the lock",
                  file=sys.stderr)
            return 1
        return 0
    print(digest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
