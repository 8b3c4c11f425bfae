"""The ls-refs client of the merger's ref probe, on scripted channels."""

from __future__ import annotations

import pytest

from gatekeeper.merger.refprobe import NoAnswer, ls_refs, ls_refs_request, parse_ssh_base, pkt


class Chan:
    def __init__(self, data: bytes, chunk: int = 7):
        self.data = data
        self.chunk = chunk
        self.sent = b""

    def recv(self, n: int) -> bytes:
        out, self.data = self.data[:min(n, self.chunk)], self.data[min(n, self.chunk):]
        return out

    def sendall(self, data: bytes) -> None:
        self.sent += data


V2_CAPS = pkt("version 2\n") + pkt("agent=git/2.39\n") + pkt("ls-refs=unborn\n") + b"0000"
A, B = "a" * 40, "b" * 40


def test_ls_refs_reads_branches_and_tags():
    answer = pkt(f"{A} refs/heads/master\n") + pkt(f"{B} refs/tags/v1 peeled:{A}\n") + b"0000"
    chan = Chan(V2_CAPS + answer)
    assert ls_refs(chan, deadline=1e18) == {"refs/heads/master": A, "refs/tags/v1": B}
    assert chan.sent == ls_refs_request()
    assert b"ref-prefix refs/heads/\n" in chan.sent and b"ref-prefix refs/tags/\n" in chan.sent


def test_a_v0_server_or_a_cut_answer_is_no_answer():
    v0 = pkt(f"{A} HEAD\0multi_ack side-band-64k\n") + pkt(f"{A} refs/heads/master\n") + b"0000"
    with pytest.raises(NoAnswer):
        ls_refs(Chan(v0), deadline=1e18)
    with pytest.raises(NoAnswer):  # ended in the middle of the answer
        ls_refs(Chan(V2_CAPS + pkt(f"{A} refs/heads/master\n")), deadline=1e18)
    no_ls_refs = pkt("version 2\n") + pkt("fetch=shallow\n") + b"0000"
    with pytest.raises(NoAnswer):
        ls_refs(Chan(no_ls_refs), deadline=1e18)
    with pytest.raises(NoAnswer):
        ls_refs(Chan(b"zzzz"), deadline=1e18)


def test_ssh_base_urls():
    assert parse_ssh_base("ssh://ci@review:29418/") == ("review", 29418, "ci", "/")
    assert parse_ssh_base("ssh://review/a/b") == ("review", 22, None, "/a/b/")
    assert parse_ssh_base("ssh://ci@[::1]:2222/") == ("::1", 2222, "ci", "/")
    assert parse_ssh_base("file:///srv/git") is None
    assert parse_ssh_base("ci@review:repos") is None  # scp-like: git only
