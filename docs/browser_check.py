"""Open built book pages in headless Chromium and check that figures and math render.

Usage: ``python docs/browser_check.py docs/_build/html [page.html ...]``. Without page
names it checks every tutorial and solution page and the spectrum-plot guide.

For each page a copy with a small probe script is written next to it (so relative links
still resolve), Chromium loads it with **every host name unresolvable** (the check proves
that the page needs no network), waits until MathJax has typeset the page, and dumps the
DOM; the probe's findings are read back from it. A page passes when

* it has at least one ``<img>``, and every image has loaded (``complete`` and
  ``naturalWidth > 0``);
* MathJax (the bundled copy under ``_static/mathjax``, never a CDN) has rendered every math
  element Sphinx wrote (``mjx-container`` count ≥ math elements), with no ``mjx-merror``;
* no raw ``$$`` is left in the visible text.

Needs the ``chromium`` executable (Debian package ``chromium``); exits 1 on any failure and
2 when Chromium is missing. Set ``BROWSER_CHECK_SCREENSHOTS=DIR`` to also save a PNG of the
top of each page.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
<script>
window.addEventListener("load", async () => {
  try { if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; } } catch (e) {}
  const imgs = Array.from(document.querySelectorAll("article img, main img"));
  const result = {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    min_width: imgs.length ? Math.min(...imgs.map(i => i.naturalWidth)) : 0,
    math_sources: document.querySelectorAll(".math").length,
    math_rendered: document.querySelectorAll("mjx-container").length,
    math_errors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    raw_dollars: (document.body.innerText.match(/\\$\\$/g) || []).length,
    mathjax: (window.MathJax && MathJax.version) || null,
  };
  document.body.setAttribute("data-browser-check", JSON.stringify(result));
});
</script>
"""


def find_chromium() -> str | None:
    """Return the path of a Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def probe(chromium: str, page: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` with the probe in headless Chromium and return the probe's findings."""
    text = page.read_text(encoding="utf-8")
    copy = page.with_name(f".browser-check-{page.name}")
    copy.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a CDN request would fail
        "--virtual-time-budget=30000",
    ]
    try:
        with tempfile.TemporaryDirectory() as profile:
            args = base + [f"--user-data-dir={profile}"]
            out = subprocess.run(
                args + ["--dump-dom", copy.as_uri()],
                capture_output=True,
                text=True,
                timeout=180,
            ).stdout
            if screenshot is not None:
                subprocess.run(
                    args + ["--window-size=1280,1600", f"--screenshot={screenshot}", copy.as_uri()],
                    capture_output=True,
                    timeout=180,
                )
    finally:
        copy.unlink()
    found = re.search(r'data-browser-check="([^"]*)"', out)
    if not found:
        return {"error": "the probe did not report (page did not finish loading?)"}
    return json.loads(html.unescape(found.group(1)))


def problems(result: dict) -> list[str]:
    """The reasons a probed page fails (empty when it passes)."""
    if "error" in result:
        return [result["error"]]
    bad = []
    if result["images"] == 0:
        bad.append("no figure on the page")
    if result["broken"]:
        bad.append(f"images not loaded: {result['broken']}")
    if result["math_sources"] and not result["mathjax"]:
        bad.append("MathJax did not load")
    if result["math_rendered"] < result["math_sources"]:
        bad.append(f"math rendered {result['math_rendered']} of {result['math_sources']}")
    if result["math_errors"]:
        bad.append(f"{result['math_errors']} MathJax errors")
    if result["raw_dollars"]:
        bad.append(f"{result['raw_dollars']} raw $$ in the text")
    return bad


def default_pages(root: Path) -> list[Path]:
    """Every tutorial and solution page, and the spectrum-plot guide."""
    pages = sorted((root / "tutorials").glob("[0-9][0-9]_*.html"))
    pages += sorted((root / "solutions").glob("[0-9][0-9]_*.html"))
    pages += [p for p in [root / "reading_spectrum_plots.html"] if p.exists()]
    return pages


def main(argv: list[str]) -> int:
    """Check the pages; print one line per page; return the exit status."""
    if not argv:
        print(__doc__)
        return 2
    root = Path(argv[0]).resolve()
    pages = [root / name for name in argv[1:]] or default_pages(root)
    chromium = find_chromium()
    if chromium is None:
        print("browser check: no chromium executable (apt-get install chromium)", file=sys.stderr)
        return 2
    if not pages:
        print(f"browser check: no pages under {root}", file=sys.stderr)
        return 1
    shots = os.environ.get("BROWSER_CHECK_SCREENSHOTS")
    failed = 0
    for page in pages:
        name = "_".join(page.relative_to(root).with_suffix(".png").parts)
        shot = Path(shots) / name if shots else None
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
        result = probe(chromium, page, shot)
        bad = problems(result)
        failed += bool(bad)
        summary = ", ".join(f"{k}={v}" for k, v in result.items() if k != "broken")
        print(f"{'FAIL' if bad else 'ok  '} {page.relative_to(root)}: {summary}")
        for reason in bad:
            print(f"     {reason}")
    verdict = f"all {len(pages)} pages render"
    if failed:
        verdict = f"{failed} of {len(pages)} pages FAILED"
    print(f"browser check (figures and math): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
