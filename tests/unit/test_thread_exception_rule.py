"""The suite's rule: an exception that escapes a thread fails the test (pyproject filterwarnings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_exception_in_a_thread_fails_the_test(tmp_path):
    case = tmp_path / "test_crash.py"
    case.write_text("import threading\n\n\ndef test_crash():\n"
                    "    t = threading.Thread(target=lambda: 1 / 0)\n    t.start()\n    t.join()\n")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
                          str(case)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout
    assert "1 failed" in res.stdout and "PytestUnhandledThreadExceptionWarning" in res.stdout
