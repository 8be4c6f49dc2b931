"""The documentation: the README stays short and its links resolve, the MkDocs site builds
with `--strict` (broken links, anchors and API references fail), and the benchmark pages
are exactly what `python -m bench.pages` makes of `bench/results/`."""

import os
import re
import subprocess
import sys

from bench import pages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
MAX_README_LINES = 200

# [text](target) and ![alt](target), not inside inline code.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _readme() -> str:
    with open(README) as f:
        return f.read()


def _relative_links(text: str):
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)                   # inline code
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        yield target


def test_readme_is_short():
    lines = _readme().count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/")


def test_readme_relative_links_exist():
    links = list(_relative_links(_readme()))
    assert links, "README.md links to no documentation page"
    missing = [link for link in links
               if not os.path.exists(os.path.join(ROOT, link.split("#", 1)[0]))]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_docs_have_no_machine_paths():
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        for name in files:
            if name.endswith(".md"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    if re.search(r"(?<![\w.])/(work|tmp|home|root)/", f.read()):
                        offenders.append(os.path.relpath(path, ROOT))
    assert not offenders, f"machine-specific absolute paths in {offenders}"


def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    assert (tmp_path / "site" / "benchmarks" / "headline-study" / "index.html").exists()


def test_benchmark_pages_match_their_json():
    stale = []
    for name, text in pages.render_all().items():
        path = os.path.join(pages.PAGES_DIR, name)
        with open(path) as f:
            if f.read() != text:
                stale.append(name)
    assert not stale, (f"docs/benchmarks/ pages out of date with bench/results/: {stale}; "
                       "run `python -m bench.pages`")


def test_every_benchmark_page_is_in_the_nav():
    with open(os.path.join(ROOT, "mkdocs.yml")) as f:
        nav = f.read()
    for name in (page.output for page in pages.PAGES):
        assert f"benchmarks/{name}" in nav, f"benchmarks/{name} is not in mkdocs.yml's nav"


def test_results_hold_no_absolute_paths():
    for name in os.listdir(pages.RESULTS_DIR):
        with open(os.path.join(pages.RESULTS_DIR, name)) as f:
            text = f.read()
        assert not re.search(r"\"/(work|tmp|home|root)/", text), name
