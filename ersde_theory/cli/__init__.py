"""Command line of ersde_theory: python -m ersde_theory COMMAND (or the console script ersde).

COMMANDS is the one registry: a name maps to a Command (help, add_arguments, run) or, for a command with
subcommands (bench), to a dict of them. Building the parsers imports argparse only; each run function
imports its implementation.
"""

from __future__ import annotations

import argparse

from . import bench, figures, sample, studies, train
from .args import Command, HelpFormatter, Parser

COMMANDS: dict[str, Command | dict[str, Command]] = {
    "figures": figures.FIGURES,
    "sample": sample.SAMPLE,
    "bench": {
        "quality": bench.QUALITY,
        "speed": bench.SPEED,
        "nsf": bench.NSF,
        "official": bench.OFFICIAL,
        "images": bench.IMAGES,
        "pipelines": bench.PIPELINES,
        "flow": bench.FLOW,
        "fmnist": bench.FMNIST,
    },
    "train-toy": train.TRAIN_TOY,
    "train-digits": train.TRAIN_DIGITS,
    "train-digit-features": train.TRAIN_DIGIT_FEATURES,
    "train-fmnist": train.TRAIN_FMNIST,
    "train-fmnist-features": train.TRAIN_FMNIST_FEATURES,
    "convergence": studies.CONVERGENCE,
    "third-order": studies.THIRD_ORDER,
    "flow-expansion": studies.FLOW_EXPANSION,
    "symbolic-bench": studies.SYMBOLIC_BENCH,
}

GROUP_HELP = {"bench": "Run a benchmark (see bench -h)."}


def _add_commands(parser: argparse.ArgumentParser, commands: dict, dest: str) -> None:
    sub = parser.add_subparsers(dest=dest, required=True, metavar="COMMAND" if dest == "command" else "NAME")
    for name, entry in commands.items():
        if isinstance(entry, Command):
            p = sub.add_parser(name, help=entry.help, description=entry.help, formatter_class=HelpFormatter)
            entry.add_arguments(p)
            p.set_defaults(_run=entry.run)
        else:
            text = GROUP_HELP.get(name, "")
            p = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
            _add_commands(p, entry, name)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m ersde_theory",
        description="ER-SDE solvers for diffusion models: figures, studies, benchmarks, training, image sampling.",
        epilog="python -m ersde_theory COMMAND -h shows a command's options and their defaults.",
        formatter_class=HelpFormatter,
    )
    _add_commands(parser, COMMANDS, "command")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args._run(args)
