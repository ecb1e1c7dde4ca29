"""``python -m ersde_theory symbolic-bench``: build and verify the whole symbolic derivation suite, timed."""

from __future__ import annotations

import json
import time

from .cli import command


def _args(p):
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    p.add_argument("--quiet", action="store_true", help="only the total")


@command("symbolic-bench", _args)
def _symbolic_bench(args) -> int:
    """Time the symbolic derivation suite (seven NSFs, k <= 3, series to Delta^4, VE and VP)."""
    t0 = time.perf_counter()
    from .theory.symbolic import run_suite  # the import (sympy) is part of the cost

    t_import = time.perf_counter() - t0
    res = run_suite(log=None if (args.quiet or args.json) else print)
    res["import_seconds"] = t_import
    res["total_seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(
            f"derivation suite: {res['seconds']:.1f}s (+ {t_import:.1f}s import), "
            f"{len(res['failures'])} failed identities"
        )
        for f in res["failures"]:
            print("  FAILED:", f)
    return 1 if res["failures"] else 0
