"""CLI layer (ersde_theory/cli: argument parsing and dispatch): one command registry, plain-text --help with
defaults, lazy heavy imports, literal choices that match the implementations, one device resolver. Tests that run
a command end to end live with the layer that does the work (tests/images for sample and bench images,
tests/studies for the studies and benches)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ersde_theory.cli import COMMANDS, build_parser
from ersde_theory.devices import resolve_device

ROOT = Path(__file__).resolve().parents[2]


def _commands():
    for name, entry in COMMANDS.items():
        if isinstance(entry, dict):
            yield from ([name, sub] for sub in entry)
        else:
            yield [name]


@pytest.mark.parametrize("argv", list(_commands()), ids=" ".join)
def test_help_is_plain_text_and_shows_defaults(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*argv, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert not re.search(r"``|:(func|mod|class|data):|issue \d|§", text), text
    if "--device" in text:
        assert "(default: auto)" in text
    if "--outdir OUTDIR" in text and argv != ["sample"]:
        assert re.search(r"--outdir OUTDIR\s+output folder \(default: [^)]+\)", text), text


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom ersde_theory.cli import main\n"
        "for argv in (['--help'], ['sample', '--help'], ['bench', 'images', '--help'],\n"
        "             ['bench', 'pipelines', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sympy', 'matplotlib', 'diffusers')"
        " or m.startswith('ersde_theory.studies')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


def test_choices_are_the_implementations_registries():
    """No choice list is restated: each option's choices are read from the registry that owns them."""
    from ersde_theory.cli.args import RegistryChoices
    from ersde_theory.coefficients.ersde import QUADRATURES
    from ersde_theory.diffusers_integration import pipelines
    from ersde_theory.models.checkpoints import OBJECTIVES
    from ersde_theory.sample_job import DTYPES
    from ersde_theory.studies.third_order import PRESETS

    def choices(*argv):
        parser = build_parser()
        for name in argv:
            parser = next(a for a in parser._actions if a.dest in ("command", argv[0])).choices[name]
        return {a.dest: a.choices for a in parser._actions if a.choices is not None}

    assert tuple(choices("sample")["dtype"]) == tuple(DTYPES) and choices("sample")["quadrature"] is QUADRATURES
    presets = choices("third-order")["preset"]
    assert isinstance(presets, RegistryChoices) and tuple(presets) == tuple(PRESETS) and "quick" in presets
    bench = choices("bench", "pipelines")
    assert bench["pipelines"] == pipelines.PIPELINES and bench["size"] == ("auto", *pipelines.SIZES)
    assert bench["dtype"] == tuple(pipelines.DTYPES)
    assert choices("train-digits")["objective"] == tuple(OBJECTIVES)


def test_resolve_device():
    from ersde_theory.models.train import resolve_device as from_train

    assert from_train is resolve_device
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("banana")
    if torch.cuda.is_available():
        assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    else:
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
