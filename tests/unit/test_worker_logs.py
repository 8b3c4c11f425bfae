"""Publishing logs: .log -> .txt, gzip of big text, no symlinks, console kept plain."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from gatekeeper.worker.logs import is_text, publish, published_name, start_log_dir


def test_published_name() -> None:
    assert published_name("screen-n-api.log") == "screen-n-api.txt"
    assert published_name("syslog.txt") == "syslog.txt"
    assert published_name("catalog") == "catalog"


def test_publish(tmp_path: Path) -> None:
    console = tmp_path / "console.txt"
    console.write_text("NODE_PROVIDER=x\n" + "c" * 5000)
    col = tmp_path / "collected" / "logs"
    (col / "sub").mkdir(parents=True)
    (col / "screen-key.log").write_text("small\n")
    (col / "sub" / "big.log").write_text("x" * 5000)
    (col / "image.png").write_bytes(b"\x89PNG" + b"\x00" * 5000)
    (col / "data.bin.log").write_bytes(b"\x00" * 5000)
    secret = tmp_path / "secret"
    secret.write_text("do not publish")
    os.symlink(secret, col / "link.txt")
    os.symlink(tmp_path, col / "dirlink")
    dest = tmp_path / "pub" / "a" / "b"
    publish(console, tmp_path / "collected", dest, gzip_threshold=1000)
    assert (dest / "console.txt").read_text().startswith("NODE_PROVIDER=x")  # never gzipped
    assert (dest / "logs" / "screen-key.txt").read_text() == "small\n"
    assert gzip.decompress((dest / "logs" / "sub" / "big.txt.gz").read_bytes()) == b"x" * 5000
    assert not (dest / "logs" / "sub" / "big.txt").exists()
    assert (dest / "logs" / "image.png").exists()  # binary: copied, not gzipped
    assert (dest / "logs" / "data.bin.txt").exists()
    assert not (dest / "logs" / "link.txt").exists() and not (dest / "logs" / "dirlink").exists()
    assert oct((dest / "logs" / "screen-key.txt").stat().st_mode & 0o777) == "0o644"
    # A rerun of the same build uuid starts from a fresh directory.
    (col / "screen-key.log").unlink()
    start_log_dir(dest)
    publish(console, tmp_path / "collected", dest, gzip_threshold=1000)
    assert not (dest / "logs" / "screen-key.txt").exists()


def test_console_written_in_place_is_kept(tmp_path: Path) -> None:
    dest = start_log_dir(tmp_path / "pub")
    (dest / "console.txt").write_text("x" * 5000)
    out = publish(dest / "console.txt", tmp_path / "nothing", dest, gzip_threshold=10)
    assert out == [dest / "console.txt"] and (dest / "console.txt").read_text() == "x" * 5000


def test_is_text(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("hello")
    (tmp_path / "b.tar").write_text("hello")
    (tmp_path / "c.txt").write_bytes(b"a\x00b")
    assert is_text(tmp_path / "a.log")
    assert not is_text(tmp_path / "b.tar") and not is_text(tmp_path / "c.txt")
