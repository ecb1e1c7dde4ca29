"""docs/theory.md is the spec: its equations are numbered (1)…(n) without gaps or repeats, and every
"eq. (k)" / "eqs. (k)–(m)" cited by the package, the tests, the notebooks or the README exists there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "theory.md").read_text()
LABELS = [int(m) for m in re.findall(r"\((\d+)\)\s*$", DOC, re.M)]


def test_equation_numbers_are_one_to_n_once_each():
    assert sorted(LABELS) == list(range(1, max(LABELS) + 1))
    assert f"**(1)…({max(LABELS)})**" in DOC


def test_every_cited_equation_exists():
    files = [*(ROOT / "ersde_theory").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    files += [*(ROOT / "notebooks").glob("*.ipynb"), ROOT / "README.md"]
    missing = {}
    for path in files:
        for m in re.finditer(r"eqs?\.\s*((?:\(\d+\)(?:\s*(?:,|and|–|-|to|/)\s*)?)+)", path.read_text()):
            for k in map(int, re.findall(r"\((\d+)\)", m.group(1))):
                if k not in LABELS:
                    missing.setdefault(k, path.relative_to(ROOT).as_posix())
    assert not missing, f"cited but not in docs/theory.md: {missing}"
