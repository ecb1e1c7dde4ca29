"""Sphinx configuration of the documentation site (build: ``python docs/build.py``; output: out/site)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import ersde_theory  # noqa: E402

project = "ersde-theory"
author = "ersde-theory contributors"
copyright = "ersde-theory contributors (MIT licence)"
release = version = ersde_theory.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",  # Markdown (myst-parser) and notebooks
    "ersde_docs",  # equation labels and links, the CLI's --help, MathJax served locally
]

root_doc = "index"
exclude_patterns = ["_build", "notebooks/.ipynb_checkpoints", "notebooks/__pycache__"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# notebooks: their stored outputs and figures, never executed
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no require.js / widget scripts from a CDN
nb_render_markdown_format = "myst"  # text/markdown outputs: tables and dollar math
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # "$$…$$" inside a paragraph (notebook LaTeX outputs) is display math
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # reports and notebooks start their sections at "##" under a "#"

# API reference: signatures with their types, members in source order
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # a method without its own docstring does not borrow diffusers' (not reST)
autodoc_default_options = {"exclude-members": "__init__, __new__"}
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# offline: MathJax from _static/mathjax (copied by ersde_docs from sphinx-mathjax-offline), no remote fonts
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "furo"
html_title = f"ersde-theory {release}"
html_static_path = ["_static"]
html_css_files = ["ersde.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
