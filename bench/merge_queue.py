"""A 20-deep gate queue's merge requests vs git merging incrementally.

The same upstream as merge_chain.py. The scheduler asks for one request per
queue item, item k carrying the chain of changes 1..k; all 20 go through
``gatekeeper.merger.Merger`` one after the other (one merger serves them in
order). Baseline, same run: the git CLI in its own clone merging
incrementally — one fetch, one checkout of the tip, then per change one
merge and one push of the state so far (20 merges in all). Prints medians,
git processes, and the ratio.

    .venv/bin/python bench/merge_queue.py [--depth 20] [--repeat 3]
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
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    numbers = range(1, args.depth + 1)
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp:
        root = Path(tmp)
        up = make_upstream(root, args.depth)
        merger = new_merger(root, up, "gk")
        cli = CliMerger(root, up)
        runs = iter(range(100_000))

        def ours() -> None:
            # Nothing remembered from the run before: every state is new.
            merger.repo(PROJECT).forget()
            for k in numbers:
                res = merger.merge(items(range(1, k + 1)), uuid=f"q{next(runs)}")
                assert res.merged, res

        def theirs() -> None:
            shas = cli.fetch(numbers)
            cli.checkout_tip()
            for n, sha in zip(numbers, shas, strict=True):
                cli.merge(n, sha)
                cli.push(f"refs/gatekeeper/master/Zcli{next(runs)}")

        ours(), theirs()
        with GitCounter() as c_ours:
            ours()
        with GitCounter() as c_cli:
            theirs()
        t_cli, t_ours = medians(theirs, ours, args.repeat)
    print(f"a {args.depth}-deep queue ({args.depth} merge requests), median of {args.repeat}")
    print(f"{'':24} {'ms':>8} {'git processes':>14}")
    print(f"{'git CLI (baseline)':24} {t_cli * 1e3:8.1f} {c_cli.count:14d}")
    print(f"{'Merger.merge x ' + str(args.depth):24} {t_ours * 1e3:8.1f} {c_ours.count:14d}")
    print(f"ratio: {t_ours / t_cli:.2f}x the git CLI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
