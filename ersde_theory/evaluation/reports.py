"""Writing a measurement's results: one JSON file with the data and one Markdown file with its tables.

Every study and bench writes through :func:`write_report`, so the files look alike and are never left
half-written: each is written to a temporary file beside it and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(outdir, stem: str, data, markdown: str, *, default: Callable | None = None) -> tuple[Path, Path]:
    """Write ``outdir/stem.json`` (``data``, indented; ``default`` as in :func:`json.dumps`) and
    ``outdir/stem.md`` (``markdown``); create ``outdir`` if needed. Returns the two paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = outdir / f"{stem}.json", outdir / f"{stem}.md"
    _write_atomic(jpath, json.dumps(data, indent=1, default=default) + "\n")
    _write_atomic(mpath, markdown if markdown.endswith("\n") else markdown + "\n")
    return jpath, mpath
