"""The documentation site's own Sphinx extension (docs/conf.py loads it).

* ``docs/theory.md`` is plain Markdown whose equations are indented code blocks (or, for (6), (32), (34), (39) and
  (42), a table or a paragraph) ending in "(n)". On ``source-read`` each numbered block gets a label ``eq-n`` (the
  HTML anchor ``theory.html#eq-n``) and its number is shown at the right, linking to itself.
* Every "eq. (n)", "eqs. (n)–(m)", "eqs. (9), (14), (15)" or "eq. 31" in a docstring (``autodoc-process-docstring``)
  and in Markdown that the site includes (``source-read`` and ``include-read``: README sections, CHANGELOG, the
  reports) becomes a reference to that label. A number that is not an equation of docs/theory.md is a warning, so
  the strict build fails on it.
* ``cli-help`` shows the ``--help`` text of a command of ``python -m ersde_theory``, made by the parser at build
  time.
* MathJax is served from the site itself (``_static/mathjax``), copied from the ``sphinx-mathjax-offline`` package:
  viewing the site needs no network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import textwrap
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

THEORY = Path(__file__).resolve().parents[1] / "theory.md"
NUMBER_AT_END = re.compile(r"^(?P<text>.*?)\s*\((?P<n>\d+)\)\s*$")

# "eq. (26)", "eqs. (37)–(40)", "eqs. (9), (14), (15)", "eqs. (23)/(25)", "eq. 31", "eqs. 51–52"
_NUM = r"(?:\(\d+\)|\d+\b)"
CITATION = re.compile(rf"\b(?P<word>[Ee]qs?\.)(?P<sep>\s+)(?P<nums>{_NUM}(?:\s*(?:,|and|–|-|to|/)\s*{_NUM})*)")
ONE_NUMBER = re.compile(r"\(?(\d+)\)?")
_SEP = r"\s*(?:,|and|–|-|to|/)\s*"
# a citation broken over two lines: "eqs. (21),⏎(35)" or "eq.⏎(35)": the next line starts with its numbers
ENDS_OPEN = re.compile(rf"\b[Ee]qs?\.(?:\s+{_NUM}(?:{_SEP}{_NUM})*\s*(?:,|and|–|-|to|/))?\s*$")
CONTINUATION = re.compile(rf"^(?P<word>)(?P<sep>\s*)(?P<nums>\(\d+\)(?:{_SEP}\(\d+\))*)")


def equation_numbers(text: str | None = None) -> set[int]:
    """The equation numbers of docs/theory.md (a "(n)" at the end of a line)."""
    text = THEORY.read_text(encoding="utf-8") if text is None else text
    return {int(m.group("n")) for line in text.splitlines() if (m := NUMBER_AT_END.match(line))}


# ----------------------------------------------------------------------------------------------- theory.md
def number_equations(text: str) -> str:
    """docs/theory.md with a MyST label ``(eq-n)=`` before each numbered block and the number made a directive
    (code blocks) or a role (paragraphs, the table of (6))."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        starts_code = line.startswith("    ") and line.strip() and (i == 0 or not lines[i - 1].strip())
        if starts_code:
            j = i
            while j < len(lines) and lines[j].startswith("    ") and lines[j].strip():
                j += 1
            block = lines[i:j]
            numbers = [m.group("n") for b in block if (m := NUMBER_AT_END.match(b)) and m.group("text").strip()]
            if numbers:
                body = [NUMBER_AT_END.sub(r"\g<text>", b) if NUMBER_AT_END.match(b) else b for b in block]
                out += [f"(eq-{n})=" for n in numbers]
                out += ["```{numbered-equation} " + " ".join(numbers)]
                out += textwrap.dedent("\n".join(b.rstrip() for b in body)).split("\n")
                out += ["```"]
            else:
                out += block
            i = j
            continue
        m = NUMBER_AT_END.match(line)
        if m and not m.group("text").strip():  # a lone "(n)" under a table (eq. (6)): label it and its title
            k = len(out)
            while k > 0 and out[k - 1].startswith("|"):
                k -= 1
            if k > 1 and not out[k - 1].strip() and out[k - 2].strip():
                k -= 1
                while k > 0 and out[k - 1].strip():
                    k -= 1
            out.insert(k, f"(eq-{m.group('n')})=")
            out += ["", f"{{eqno}}`{m.group('n')}`"]
        elif m and not line.startswith("    "):  # a paragraph ending in "(n)": label the paragraph
            k = len(out)
            while k > 0 and out[k - 1].strip() and not out[k - 1].startswith("(eq-"):
                k -= 1
            out.insert(k, f"(eq-{m.group('n')})=")
            out.append(f"{m.group('text')} {{eqno}}`{m.group('n')}`")
        else:
            out.append(line)
        i += 1
    return "\n".join(out)


class NumberedEquation(Directive):
    """```{numbered-equation} 26``` with the equation's text (kept as written, monospaced) as content."""

    required_arguments = 1
    optional_arguments = 9
    has_content = True

    def run(self):
        text = "\n".join(self.content)
        block = nodes.literal_block(text, text, classes=["equation-text"])
        block["language"] = "none"
        numbers = nodes.paragraph(classes=["eqno-column"])
        for k, n in enumerate(self.arguments):
            if k:
                numbers += nodes.Text(", ")
            numbers += _eqno(n)
        return [nodes.container("", block, numbers, classes=["numbered-equation"])]


def _eqno(n: str) -> nodes.reference:
    return nodes.reference("", f"({n})", refid=f"eq-{n}", classes=["eqno"])


def eqno_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """{eqno}`6`: the number of an equation, at the right, linking to its label."""
    return [_eqno(text.strip())], []


# --------------------------------------------------------------------------------------- equation links
def _link_numbers(nums: str, make) -> str:
    return ONE_NUMBER.sub(lambda m: make(m.group(0), int(m.group(1))), nums)


def link_citations(text: str, make, known: set[int], where: str, continued: bool = False) -> str:
    """Every equation citation in ``text`` (outside inline code) with each number replaced by ``make(shown, n)``;
    ``continued``: the line before ended in an open citation ("eqs. (21)," or "eq."), whose numbers start this one."""

    def replace(m: re.Match) -> str:
        for n in map(int, ONE_NUMBER.findall(m.group("nums"))):
            if n not in known:
                logger.warning("%s cites eq. (%d), which docs/theory.md does not have", where, n)
        return m.group("word") + m.group("sep") + _link_numbers(m.group("nums"), make)

    def change(part: str, first: bool) -> str:
        if first and continued and (m := CONTINUATION.match(part)):
            return replace(m) + CITATION.sub(replace, part[m.end() :])
        return CITATION.sub(replace, part)

    parts = re.split(r"(``.*?``|`[^`]*`)", text)
    return "".join(p if k % 2 else change(p, k == 0) for k, p in enumerate(parts))


def _ends_open(line: str) -> bool:
    return bool(ENDS_OPEN.search(re.split(r"``.*?``|`[^`]*`", line)[-1]))


def _outside_literals(text: str, change) -> str:
    """``text`` with ``change`` applied outside inline literals and roles (``…``, `…`), which stay as written."""
    parts = re.split(r"(``.*?``|`[^`]*`)", text)
    return "".join(p if k % 2 else change(p) for k, p in enumerate(parts))


def _rst_ref(shown: str, n: int) -> str:
    return f":ref:`{shown} <eq-{n}>`"


def _myst_ref(shown: str, n: int) -> str:
    return f"{{ref}}`{shown} <eq-{n}>`"


def link_docstring(lines: list[str], known: set[int], where: str) -> None:
    """Rewrite reST docstring lines in place: equation links, and "|" escaped (the docstrings write |x| for a norm,
    never a substitution). Literal blocks (after "::") and doctest lines stay as written."""
    literal_indent, continued = None, False
    for k, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                continue
            literal_indent = None
        if line.rstrip().endswith("::"):
            literal_indent = indent
        if line.lstrip().startswith(">>>"):
            continue
        if not (line.strip() == "|" or line.lstrip().startswith(("| ", "+-", "+="))):  # a table, a line block
            line = _outside_literals(line, lambda part: part.replace("|", "\\|"))
        lines[k] = link_citations(line, _rst_ref, known, where, continued)
        continued = _ends_open(line)


def link_markdown(text: str, known: set[int], where: str) -> str:
    """The same for MyST Markdown: fenced and indented code and inline code stay as written."""
    out, fence, prev_blank, continued = [], None, True, False
    for line in text.split("\n"):
        stripped = line.lstrip()
        if fence:
            fence = None if stripped.startswith(fence) else fence
            out.append(line)
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            out.append(line)
        elif line.startswith("    ") and prev_blank:
            out.append(line)
            continue  # an indented code block goes on while indented
        else:
            out.append(link_citations(line, _myst_ref, known, where, continued and not prev_blank))
        prev_blank, continued = not line.strip(), _ends_open(line)
    return "\n".join(out)


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    path = app.env.doc2path(docname)
    if not str(path).endswith(".md"):
        return
    known = app.env.ersde_equations
    text = source[0]
    if docname == "theory":
        text = number_equations(text)
    source[0] = link_markdown(text, known, docname)


def on_include_read(app: Sphinx, relative_path, parent_docname: str, content: list[str]) -> None:
    if str(relative_path).endswith(".md"):
        content[0] = link_markdown(content[0], app.env.ersde_equations, str(relative_path))


def on_docstring(app: Sphinx, what, name, obj, options, lines: list[str]) -> None:
    link_docstring(lines, app.env.ersde_equations, name)


def on_builder_inited(app: Sphinx) -> None:
    app.env.ersde_equations = equation_numbers()


# ------------------------------------------------------------------------------------------------ CLI help
class CliHelp(Directive):
    """```{cli-help} sample``` (or ``bench quality``; no argument: the top level): that command's ``--help``."""

    optional_arguments = 5
    has_content = False

    def run(self):
        from ersde_theory.cli import build_parser

        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal: the same width on every machine
        try:
            parser = build_parser()
            for word in self.arguments:
                sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
                parser = sub.choices[word]
            text = parser.format_help()
        finally:
            if old is None:
                os.environ.pop("COLUMNS")
            else:
                os.environ["COLUMNS"] = old
        block = nodes.literal_block(text, text, classes=["cli-help"])
        block["language"] = "none"
        return [block]


class TexFile(Directive):
    """```{tex-file} ../../figures/x_caption.tex```: the display math of a LaTeX file (``\\[ … \\]``, "%"
    comments dropped) as a math block, typeset by MathJax."""

    required_arguments = 1
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        relative, path = env.relfn2path(self.arguments[0], env.docname)
        env.note_dependency(relative)
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        text = "\n".join(line for line in lines if not line.startswith("%"))
        blocks = re.findall(r"\\\[(.*?)\\\]", text, re.S)
        if not blocks:
            raise self.error(f"{self.arguments[0]}: no \\[ … \\] display math")
        return [nodes.math_block(b.strip(), b.strip(), nowrap=False, number=None) for b in blocks]


# ------------------------------------------------------------------------------------------ notebook LaTeX
def patch_notebook_latex() -> None:
    """myst-nb puts a text/latex output into one display-math block. The notebooks' derivations display a title in
    inline math and then the aligned steps (``$\\textbf{…}$`` + ``$$\\begin{aligned}…$$``), which in one block
    MathJax cannot typeset; such outputs are rendered as Markdown instead (dollar math), as JupyterLab does."""
    try:
        from myst_nb.core.render import NbElementRenderer, strip_latex_delimiters
    except ImportError:  # another myst-nb layout: its own rendering stays
        return
    original = getattr(NbElementRenderer, "render_text_latex", None)
    if (
        original is None
        or getattr(original, "ersde_docs", False)
        or not hasattr(NbElementRenderer, "_render_markdown_base")
    ):
        return

    def render_text_latex(self, data):
        if "$" in strip_latex_delimiters(data.string.strip()):
            return self._render_markdown_base(data, fmt="myst", inline=False)
        return original(self, data)

    render_text_latex.ersde_docs = True
    NbElementRenderer.render_text_latex = render_text_latex


# ------------------------------------------------------------------------------------------------ MathJax
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml", "ui", "a11y", "sre", "adaptors")


def mathjax_source() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's folder name has hyphens
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the documentation needs sphinx-mathjax-offline (pip install -e '.[docs]')")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"


def copy_mathjax(app: Sphinx, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app: Sphinx) -> dict:
    mathjax_source()  # fail early, with the reason
    patch_notebook_latex()
    app.connect("builder-inited", on_builder_inited)
    app.connect("source-read", on_source_read)
    app.connect("include-read", on_include_read)
    app.connect("autodoc-process-docstring", on_docstring)
    app.connect("build-finished", copy_mathjax)
    app.add_directive("numbered-equation", NumberedEquation)
    app.add_directive("cli-help", CliHelp)
    app.add_directive("tex-file", TexFile)
    app.add_role("eqno", eqno_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
