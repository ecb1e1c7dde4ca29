"""What every command shares: the Command record, the help formatter, the --device/--threads/--outdir options
with one meaning each, and :class:`RegistryChoices` (an option's choices read from the registry that owns them,
when argparse first needs them). Building the parsers imports no study, no sympy, matplotlib or diffusers."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

QUICK_OUTDIR = "figures/quick"  # git-ignored: quick presets never replace the committed results in figures/


@dataclass(frozen=True)
class Command:
    """One subcommand: a one-line help, a function that adds its options, and the function that runs it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to an option's help, unless the help already has "(default" or there is
    nothing to show (None, a store_true flag's False, suppressed, required)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "(default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or action.required
            or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        ):
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(map(str, default))
        return f"{text} (default: {default})" if text else f"(default: {default})"


class RegistryChoices(Sequence):
    """The names of a registry, ``"package.module:ATTRIBUTE"`` (a dict's keys, or a tuple), imported when argparse
    first checks a value or prints the choices: the choice list of an option whose registry lives in a module too
    heavy to import for ``--help`` (give the option a ``metavar``, so building the parser does not list them)."""

    def __init__(self, where: str):
        self._where, self._names = where, None

    def _get(self) -> tuple:
        if self._names is None:
            module, attr = self._where.split(":")
            self._names = tuple(getattr(importlib.import_module(module), attr))
        return self._names

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, value) -> bool:
        return value in self._get()


def fail(message: str, code: int = 2) -> int:
    """Print ``error: message`` (one line) on stderr and return the exit code (2: bad input, 1: a failed write)."""
    print(f"error: {message}", file=sys.stderr)
    return code


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: PROG: MESSAGE`` on stderr and exit code 2 (``-h`` shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def at_least(k: int):
    """An argparse type: an integer >= ``k``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {k}, got {text!r}") from None
        if n < k:
            raise argparse.ArgumentTypeError(f"must be an integer >= {k}, got {n}")
        return n

    parse.__name__ = f"integer >= {k}"
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


_non_negative_int = at_least(0)


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default, help="auto, cpu, cuda or cuda:N; auto = cuda if available, else cpu")


def add_threads(p: argparse.ArgumentParser, default: int = 0, why: str = "") -> None:
    extra = f"; {why}" if why else ""
    p.add_argument(
        "--threads",
        type=_non_negative_int,
        default=default,
        help=f"torch CPU threads; 0 leaves torch's own setting{extra}",
    )


def add_outdir(p: argparse.ArgumentParser, default: str | None = "figures", help: str = "output folder") -> None:
    """--outdir; each command passes its own default folder, or None to make the option required."""
    p.add_argument("--outdir", default=default, required=default is None, help=help)


def add_quick(p: argparse.ArgumentParser, help: str = "small CI preset") -> None:
    p.add_argument("--quick", action="store_true", help=help)


def device_of(args: argparse.Namespace, **kw):
    """args.device resolved to a torch.device (see ersde_theory.devices.resolve_device)."""
    from ..devices import resolve_device

    return resolve_device(args.device, **kw)


def apply_threads(args: argparse.Namespace) -> None:
    from ..devices import set_threads

    set_threads(args.threads)
