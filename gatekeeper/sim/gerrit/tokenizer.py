"""Split an SSH exec command line the way Gerrit's SSH daemon does.

Gerrit never runs a shell: ``CommandFactoryProvider.split`` walks the
string once. Blanks (space, tab) separate words outside quotes; single
quotes are literal up to the next single quote; double quotes group but a
backslash inside them still escapes the next character; outside single
quotes a backslash escapes the next character (a trailing backslash stays).
Newlines are ordinary characters. Empty words (``""``) are dropped, as in
Gerrit. ``shlex.quote`` output therefore round-trips exactly."""

from __future__ import annotations


def split_command(line: str) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    in_single = False
    in_double = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        i += 1
        if c in (" ", "\t"):
            if in_single or in_double:
                cur.append(c)
            elif cur:
                words.append("".join(cur))
                cur = []
        elif c == '"':
            if in_single:
                cur.append(c)
            else:
                in_double = not in_double
        elif c == "'":
            if in_double:
                cur.append(c)
            else:
                in_single = not in_single
        elif c == "\\":
            if in_single or i == n:
                cur.append(c)
            else:
                cur.append(line[i])
                i += 1
        else:
            cur.append(c)
    if cur:
        words.append("".join(cur))
    return words
