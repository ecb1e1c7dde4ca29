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


def test_literal_choices_match_the_implementations():
    from ersde_theory.cli import bench
    from ersde_theory.cli.sample import DTYPE_CHOICES
    from ersde_theory.cli.studies import THIRD_ORDER_PRESETS
    from ersde_theory.images import pipelines
    from ersde_theory.images.sample_cli import DTYPES
    from ersde_theory.studies.third_order import PRESETS

    assert tuple(DTYPES) == DTYPE_CHOICES and tuple(PRESETS) == THIRD_ORDER_PRESETS
    assert bench.PIPELINE_CHOICES == pipelines.PIPELINES and bench.SIZE_CHOICES == pipelines.SIZES
    assert bench.PIPELINE_DTYPE_CHOICES == tuple(pipelines.DTYPES)


def test_resolve_device():
    from ersde_theory.images.train import resolve_device as from_train

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
