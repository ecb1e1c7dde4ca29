"""The documentation site (README "Documentation"): built strictly (a warning fails the build) into a temporary
folder, offline (no script, style sheet or image from the network: MathJax is served by the site), with an entry in
the reference for every public name and an anchor for every equation of docs/theory.md.

The build needs the docs extra (Sphinx, furo, MyST, myst-nb, sphinx-mathjax-offline; the test extra has it); without
it these tests skip. ``pytest -m docs`` runs only them."""

import importlib.util
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NEEDS = ("sphinx", "furo", "myst_parser", "myst_nb", "sphinx-mathjax-offline")
MISSING = [name for name in NEEDS if importlib.util.find_spec(name) is None]
needs_sphinx = pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (missing {MISSING})")
pytestmark = pytest.mark.docs


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built by the README's command into a temporary folder (about 20 s on 2 cores)."""
    out = tmp_path_factory.mktemp("docs") / "site"
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - start
    assert run.returncode == 0, f"the strict build failed after {seconds:.0f} s:\n{run.stderr[-6000:]}"
    print(f"docs built in {seconds:.1f} s")
    return out


def _inventory(path: Path) -> dict[str, str]:
    """objects.inv (Sphinx's format 2: four header lines, then zlib-compressed lines) as {name: "domain:role"}."""
    data = path.read_bytes()
    body = data.split(b"\n", 4)[4]
    entries = {}
    for line in zlib.decompress(body).decode().splitlines():
        m = re.match(r"(.+?)\s+(\S+:\S+)\s+-?\d+\s+\S+\s+.*$", line)
        if m:
            entries[m.group(1)] = m.group(2)
    return entries


@needs_sphinx
def test_every_public_name_has_a_reference_entry(site):
    import ersde_theory

    inventory = _inventory(site / "objects.inv")
    names = [f"ersde_theory.{name}" for name in ersde_theory.__all__]
    names += [f"ersde_theory.diffusers_integration.{n}" for n in ("ERSDEScheduler", "FlowMatchERSDEScheduler")]
    missing = [name for name in names if not inventory.get(name, "").startswith("py:")]
    assert not missing, f"no API reference entry for {missing}"


@needs_sphinx
def test_no_network_resources(site):
    """No page loads a script, style sheet, font, image or frame from elsewhere (no CDN): the site works offline."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    tag = re.compile(r"<(?:script|link|img|iframe|source|embed)\b[^>]*>", re.I)
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//|[^"'>]*cdn)""", re.I)
    found = [(p.relative_to(site).as_posix(), t) for p in pages for t in tag.findall(p.read_text()) if remote.search(t)]
    assert not found, f"remote resources: {found[:5]}"
    for css in site.rglob("*.css"):
        assert not re.search(r"(?:@import|url\()\s*[\"']?(?:https?:|//)", css.read_text()), css
    mathjax = site / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file() and (site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert 'src="_static/mathjax/tex-chtml.js"' in (
        site / "notebooks" / "02_symbolic_derivations.html"
    ).read_text().replace("../", "")


@needs_sphinx
def test_every_equation_has_an_anchor_and_docstrings_link_to_it(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from ersde_docs import equation_numbers
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    theory = (site / "theory.html").read_text()
    ids = re.findall(r'id="eq-(\d+)"', theory)
    assert sorted(map(int, ids)) == sorted(equation_numbers()) == list(range(1, len(ids) + 1))
    for n in equation_numbers():  # each number is shown, linking to its own anchor
        assert f'href="#eq-{n}">({n})</a>' in theory
    samplers = (site / "api" / "samplers.html").read_text()
    for n in (16, 27, 28, 37, 40):  # solvers/ersde.py's docstring: eq. (16), (27), (28), eqs. (37)–(40)
        assert f'href="../theory.html#eq-{n}"' in samplers


@needs_sphinx
def test_pages(site):
    for page in ("index", "getting_started", "theory", "integrations", "changelog", "api/cli", "api/diffusers"):
        assert (site / f"{page}.html").is_file(), page
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / f"{notebook.stem}.html").read_text()
        assert "<img" in html, f"{notebook.name}: its stored figures are not shown"
    cli = (site / "api" / "cli.html").read_text()
    assert "--seeds" in cli and "--outdir" in cli  # the sample command's --help, made at build time
    assert "k-diffusion" in (site / "integrations.html").read_text()


def test_every_report_and_figure_has_a_page():
    """Each committed report figures/*.md and each figure figures/*.png appears on a benchmarks page."""
    pages = "\n".join(p.read_text() for p in (DOCS / "benchmarks").glob("*.md"))
    index = (DOCS / "benchmarks" / "index.md").read_text()
    for report in sorted((ROOT / "figures").glob("*.md")):
        assert f"figures/{report.name}" in pages, f"{report.name} has no page in docs/benchmarks/"
        assert f"\n{report.stem}\n" in index, f"docs/benchmarks/{report.stem}.md is not in the benchmarks toctree"
    for figure in sorted((ROOT / "figures").glob("*.png")):
        assert f"figures/{figure.name}" in pages, f"{figure.name} is on no page of docs/benchmarks/"


@needs_sphinx
def test_citations_become_links_outside_code():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from ersde_docs import link_docstring, link_markdown
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    known = set(range(1, 53))
    lines = ["The limit of eqs. (37)–(40), eq. 31 and ``eq. (16)``; |x| is a norm::", "", "    eq. (27) as code"]
    link_docstring(lines, known, "test")
    assert lines[0] == (
        "The limit of eqs. :ref:`(37) <eq-37>`–:ref:`(40) <eq-40>`, eq. :ref:`31 <eq-31>` and ``eq. (16)``; "
        "\\|x\\| is a norm::"
    )
    assert lines[2] == "    eq. (27) as code"
    text = "See eqs. (9), (14) and `eq. (15)`.\n\n```\neq. (16)\n```"
    assert link_markdown(text, known, "test").split("\n")[0] == (
        "See eqs. {ref}`(9) <eq-9>`, {ref}`(14) <eq-14>` and `eq. (15)`."
    )
    assert link_markdown(text, known, "test").endswith("```\neq. (16)\n```")
