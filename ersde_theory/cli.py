"""Command line: ``python -m ersde_theory <command>``. Commands are registered in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    def deco(fn):
        COMMANDS[name] = (add_args, fn)
        return fn

    return deco


def _figures_args(p):
    p.add_argument("--outdir", default="figures", help="output folder (default: figures)")
    p.add_argument("--only", nargs="*", help="names of figures to make (default: all)")
    p.add_argument("--list", action="store_true", help="list the registered figures and exit")


@command("figures", _figures_args)
def _figures(args) -> int:
    """Regenerate every figure and the verification report (CPU defaults)."""
    from .plots import FIGURES, make_figures

    if args.list:
        print("\n".join(FIGURES))
        return 0
    t0 = time.perf_counter()
    make_figures(args.outdir, args.only)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ersde_theory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0])
        add_args(p)
        p.set_defaults(_fn=fn)
    args = parser.parse_args(argv)
    return args._fn(args)


from . import cli_bench, cli_convergence, cli_images, cli_symbolic, cli_third_order  # noqa: E402,F401  (register commands)

if __name__ == "__main__":
    sys.exit(main())
