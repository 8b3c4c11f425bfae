"""Speculative state of one 20-change chain vs the git CLI doing the same merges.

An upstream project (300 files) with 20 independent changes. One merge
request for the whole chain (as the scheduler sends for the 20th item of a
fresh queue) through ``gatekeeper.merger.Merger``, from a clone that exists;
baseline, same run: the git CLI in a clone of its own doing the same work —
one fetch of the branches and the 20 change refs, one checkout of the tip,
20 ``merge -s resolve``, one push. Prints medians, git processes per
request, and the ratio.

    .venv/bin/python bench/merge_chain.py [--changes 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mergesetup import (
    PROJECT,
    CliMerger,
    GitCounter,
    items,
    make_upstream,
    medians,
    new_merger,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    numbers = range(1, args.changes + 1)
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        root = Path(tmp)
        up = make_upstream(root, args.changes)
        merger = new_merger(root, up, "gk")
        cli = CliMerger(root, up)
        runs = iter(range(10_000))

        def ours() -> None:
            # Nothing remembered from the run before: every state is new.
            merger.repo(PROJECT).forget()
            res = merger.merge(items(numbers), uuid=f"chain{next(runs)}")
            assert res.merged, res

        def theirs() -> None:
            shas = cli.fetch(numbers)
            cli.checkout_tip()
            for n, sha in zip(numbers, shas, strict=True):
                cli.merge(n, sha)
            cli.push(f"refs/gatekeeper/master/Zcli{next(runs)}")

        ours(), theirs()  # warm the page cache and both clones
        with GitCounter() as c_ours:
            ours()
        with GitCounter() as c_cli:
            theirs()
        t_cli, t_ours = medians(theirs, ours, args.repeat)
    print(f"one {args.changes}-change chain, median of {args.repeat}")
    print(f"{'':24} {'ms':>8} {'git processes':>14}")
    print(f"{'git CLI (baseline)':24} {t_cli * 1e3:8.1f} {c_cli.count:14d}")
    print(f"{'Merger.merge':24} {t_ours * 1e3:8.1f} {c_ours.count:14d}")
    print(f"ratio: {t_ours / t_cli:.2f}x the git CLI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
