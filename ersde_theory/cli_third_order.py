"""``python -m ersde_theory third-order``: the issue-7 benchmark, published vs corrected ER-SDE-Solver-3."""

from __future__ import annotations

from .cli import command
from .studies.third_order import PRESETS


def _args(p):
    p.add_argument("--outdir", default="figures", help="output folder (default: figures)")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="study sizes: quick (seconds), default (minutes on 2 CPU cores), full",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: the study's tensors are small)"
    )


@command("third-order", _args)
def third_order(args) -> int:
    """Published vs corrected ER-SDE-Solver-3: orders, weak/strong errors, FD per NFE (third_order.json/.md)."""
    import torch

    from .studies.third_order import run_benchmark

    if args.threads:
        torch.set_num_threads(args.threads)
    res = run_benchmark(args.outdir, args.preset)
    print(f"wrote {args.outdir}/third_order.json and third_order.md in {res['seconds']:.1f}s")
    return 0
