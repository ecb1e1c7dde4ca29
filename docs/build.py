"""Build the documentation site: ``python docs/build.py [OUTDIR]`` (default out/site; open OUTDIR/index.html).

Strict: every warning is an error (a broken link or reference, a docstring that does not parse, an equation cited
that docs/theory.md does not have), reported all at once (--keep-going). Notebooks are shown with their stored
outputs, not executed. Besides OUTDIR, the build writes only its caches beside it, in OUTDIR's parent folder:
Sphinx's doctrees (.doctrees) and myst-nb's copies of the notebooks' images (jupyter_execute); with the default
OUTDIR both are under the git-ignored out/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
DEFAULT_OUT = DOCS.parent / "out" / "site"


def build(outdir: Path | str = DEFAULT_OUT, *, quiet: bool = False, jobs: str = "1") -> int:
    """Run Sphinx's HTML builder on docs/ into ``outdir``; the exit status (0: built with no warning)."""
    from sphinx.cmd.build import build_main

    outdir = Path(outdir).resolve()
    args = ["-W", "--keep-going", "-E", "-b", "html", "-d", str(outdir.parent / ".doctrees"), "-j", jobs]
    args += ["-q"] if quiet else []
    return build_main([*args, str(DOCS), str(outdir)])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0]) if argv else DEFAULT_OUT
    start = time.perf_counter()
    status = build(outdir)
    if status == 0:
        print(f"built in {time.perf_counter() - start:.0f} s: open {outdir.resolve() / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
