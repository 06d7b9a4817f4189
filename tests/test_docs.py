"""The book under docs/: its build command is the README's, CI runs it, and its pages and
extra are wired up. The build itself (minutes: it executes every tutorial) runs in
.ci/docs.sh, not here; these checks are cheap and run with the test suite."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_readme_docs_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```shell\n(.*?)```", readme, flags=re.S)
    assert len(commands) == 1, "the README has one docs command in a ```shell block"
    command = commands[0].strip()
    assert "sphinx-build -W" in command and '".[docs]"' in command
    script = (ROOT / ".ci" / "docs.sh").read_text(encoding="utf-8")
    assert f"DOCS_COMMAND='{command}'" in script and 'bash -c "$DOCS_COMMAND"' in script
    assert "docs/browser_check.py" in script and "HESSREF_FAST=1" in script
    assert "bash .ci/docs.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_docs_extra_has_what_conf_py_uses():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extra = cfg["options.extras_require"]["docs"]
    for package in ("sphinx", "myst-nb", "numpydoc", "sphinx-book-theme", "sphinx-mathjax-offline"):
        assert package in extra, package
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    for module in ("myst_nb", "numpydoc", "sphinx_book_theme", "sphinx-mathjax-offline"):
        assert module in conf, module


def test_math_is_served_locally():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    path = re.search(r'^mathjax_path = "([^"]+)"', conf, flags=re.M).group(1)
    assert not path.startswith(("http:", "https:", "//")), "MathJax must not come from a CDN"


def test_index_lists_every_page_and_tutorial_glob():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert "```{include} ../README.md" in index
    for entry in ("tutorials/*", "solutions/*", "api/index", "reading_spectrum_plots"):
        assert f"\n{entry}\n" in index, entry
    namespace: dict = {}
    optional = re.search(r"^OPTIONAL_PAGES = (\(.*?\))$", (DOCS / "conf.py").read_text(), re.M)
    exec(f"pages = {optional.group(1)}", namespace)  # noqa: S102 - our own constant
    for page in namespace["pages"]:
        assert f"\n{page}\n" in index, page
    api = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
    for page in sorted((DOCS / "api").glob("*.md")):
        if page.stem != "index":
            assert f"\n{page.stem}\n" in api, page.name
