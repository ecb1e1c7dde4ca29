"""``python -m ersde_theory bench <name>``: benchmarks register here with ``@bench(name, add_args)``."""

from __future__ import annotations

from collections.abc import Callable

from .cli import command

BENCHES: dict[str, tuple[Callable, Callable]] = {}


def bench(name: str, add_args: Callable):
    def deco(fn):
        BENCHES[name] = (add_args, fn)
        return fn

    return deco


def _bench_args(p):
    sub = p.add_subparsers(dest="bench", required=True)
    for name, (add_args, fn) in BENCHES.items():
        q = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0])
        add_args(q)
        q.set_defaults(_bench_fn=fn)


@command("bench", _bench_args)
def _bench(args) -> int:
    """Run a benchmark (see `bench -h`)."""
    return args._bench_fn(args)
