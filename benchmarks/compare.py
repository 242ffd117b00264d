"""Compare saved benchmark tables: the median ratio to NumPy of each dualrev row over
several runs of a "before" and an "after" version, and after/before.

    python benchmarks/run.py --save before_1.md   # (in the old checkout; repeat, alternating)
    python benchmarks/run.py --save after_1.md    # (in the new one)
    python benchmarks/compare.py --before before_*.md --after after_*.md [--save FILE]

Each table's ratios are to plain NumPy timed in the same run, so runs on a machine whose
speed drifts stay comparable; alternate the before and after runs, and take several.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

ROW = re.compile(r"\| (.*?) \| (dualrev .*?) \| ([0-9.e+-]+) \| ([0-9.]+)x \|")


def ratios(path: str) -> dict[tuple[str, str], float]:
    """(workload, library) -> ratio to NumPy, for the dualrev rows of a saved table."""
    out = {}
    for line in Path(path).read_text().splitlines():
        m = ROW.match(line)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(4))
    return out


def compare(before: list[str], after: list[str]) -> list[str]:
    """The markdown table of median ratios (and their ranges) before and after."""
    b = [ratios(p) for p in before]
    a = [ratios(p) for p in after]
    lines = [f"Median over {len(b)} runs before and {len(a)} after (ratio to NumPy f(x) in "
             "the same run; range in brackets).", "",
             "| workload | library | before | after | after / before |", "|---|---|---|---|---|"]
    for key in b[0]:
        bs = [r[key] for r in b if key in r]
        as_ = [r[key] for r in a if key in r]
        if not as_:
            continue
        mb, ma = statistics.median(bs), statistics.median(as_)
        lines.append(f"| {key[0]} | {key[1]} | {mb:.1f}x [{min(bs):.1f}-{max(bs):.1f}] | "
                     f"{ma:.1f}x [{min(as_):.1f}-{max(as_):.1f}] | {ma / mb:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    ap.add_argument("--save", metavar="FILE")
    args = ap.parse_args()
    text = "\n".join(compare(args.before, args.after)) + "\n"
    print(text)
    if args.save:
        Path(args.save).write_text(text)


if __name__ == "__main__":
    main()
