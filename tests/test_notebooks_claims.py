"""The notebooks prove their claims: each opens with "This notebook shows: …", asserts at least three claims live
(counted as ``assert`` statements in its code), and its stored outputs carry no warnings and no machine paths.
(nbval executes the notebooks and compares their outputs; this test checks what nbval cannot.)"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/tmp/|/home/|/work/|/Users/|site-packages|[A-Z]:\\\\)")


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def count_asserts(source: str) -> int:
    """``assert`` statements in notebook code (IPython magics and shell lines dropped before parsing)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    return sum(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(code)))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 6


def test_count_asserts():
    assert count_asserts("%matplotlib inline\nassert 1\nx = 'assert'\nfor i in range(2):\n    assert i < 2\n") == 2


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_its_claims(nb):
    cells = _cells(nb)
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "**This notebook shows**" in first.split("\n\n", 2)[1] if "\n\n" in first else False, nb.name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_at_least_three_asserts(nb):
    n = sum(count_asserts("".join(c["source"])) for c in _cells(nb) if c["cell_type"] == "code")
    assert n >= 3, f"{nb.name}: {n} assert statements"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(nb):
    for i, c in enumerate(_cells(nb)):
        for out in c.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert out.get("name") != "stderr", f"{nb.name} cell {i}: stderr output {text[:200]!r}"
            assert "Warning" not in text, f"{nb.name} cell {i}: {text[:200]!r}"
            assert not MACHINE_PATH.search(text), f"{nb.name} cell {i}: machine path in {text[:200]!r}"
