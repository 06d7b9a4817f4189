"""Sphinx configuration of the hessref book (Sphinx + myst-nb).

Build from the repository root with ``sphinx-build -W -b html docs docs/_build/html``
(the README's command). The tutorials are not copied by hand: at every build the
jupytext sources ``tutorials/NN_*.py`` and ``tutorials/solutions/*.py`` are converted into
notebooks under ``docs/tutorials/`` and ``docs/solutions/`` (generated, not committed) and
executed by myst-nb, so the book always shows the current code and its real output.
Set ``HESSREF_FAST=1`` for the small CI settings. Math is rendered by a MathJax copy that
ships with the ``sphinx-mathjax-offline`` package and is copied into ``_static/``: the
built site needs no network connection.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "hessref"
author = "the hessref authors"
copyright = "the hessref authors, MIT licence"  # noqa: A001 - Sphinx's name

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# ---- sources --------------------------------------------------------------------------------
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
# Pages written by other parts of the project: a page that does not exist (yet) is dropped
# from the table of contents of index.md when it is read, instead of breaking the build.
OPTIONAL_PAGES = ("theory", "architecture", "results/results", "conformance", "distributed")
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# ---- notebooks: generated from the jupytext sources, executed at build time -----------------
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing tutorial fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# The executing kernels inherit this environment: figures must go to the inline backend
# (a non-interactive MPLBACKEND=Agg, as CI sets for the test suite, would drop them all).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def _jupytext_to_docs(pattern: str, target: Path) -> list[str]:
    """Write one notebook per jupytext source matching ``pattern``; return their names."""
    import jupytext

    target.mkdir(exist_ok=True)
    written = []
    for source in sorted(ROOT.glob(pattern)):
        notebook = jupytext.read(source)
        path = target / source.with_suffix(".ipynb").name
        text = jupytext.writes(notebook, fmt="ipynb")
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")  # rewritten only on change (incremental)
        written.append(path.name)
    for stale in target.glob("*.ipynb"):
        if stale.name not in written:
            stale.unlink()
    return written


_jupytext_to_docs("tutorials/[0-9][0-9]_*.py", DOCS / "tutorials")
_jupytext_to_docs("tutorials/solutions/[0-9][0-9]_*.py", DOCS / "solutions")

# ---- API reference from the numpydoc docstrings ---------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types and shapes
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# ---- math without a network connection ------------------------------------------------------
_MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # ships MathJax 3 as plain files


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec(_MATHJAX_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the docs need the package {_MATHJAX_PACKAGE!r} (offline MathJax); "
            'install the docs extra: pip install -e ".[docs]"'
        )
    return Path(spec.origin).parent / "static" / "mathjax"


mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/, copied below


def _drop_missing_pages(app, docname, source):
    """Remove toctree entries and links that name an optional page that is absent.

    In ``index`` the toctree line of a missing page is dropped; in every page a Markdown
    link ``[text](page.md)`` to a missing optional page becomes plain ``text``.
    """
    missing = [p for p in OPTIONAL_PAGES if not (DOCS / f"{p}.md").exists()]
    for page in missing:
        source[0] = re.sub(rf"\[([^\]]*)\]\((?:\./)?{page}\.md(#[^)]*)?\)", r"\1", source[0])
    if docname != "index":
        return
    lines = source[0].splitlines(keepends=True)
    source[0] = "".join(
        line
        for line in lines
        if line.strip() not in OPTIONAL_PAGES or (DOCS / f"{line.strip()}.md").exists()
    )


def _escape_pipes(app, what, name, obj, options, lines):
    """Escape ``|`` in docstrings: they write |x| for absolute values, not RST substitutions."""
    for i, line in enumerate(lines):
        body = line.lstrip()
        if "|" in body and not body.startswith("|") and not body.startswith("+"):
            lines[i] = line.replace("\\|", "|").replace("|", "\\|")


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        shutil.copytree(_mathjax_dir(), target, dirs_exist_ok=True)


# ---- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "hessref: exact Hessians of small neural networks"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None


def setup(app):
    """Copy MathJax into the built site (offline math) once the build has succeeded."""
    _mathjax_dir()  # fail early, with the install command, if the package is missing
    app.connect("build-finished", _copy_mathjax)
    app.connect("source-read", _drop_missing_pages)
    app.connect("autodoc-process-docstring", _escape_pipes)
    return {"parallel_read_safe": True}
