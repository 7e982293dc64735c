"""Comments, docstrings and the README point at files and README sections that exist.

Modules move (engine/ was split into packages); a comment that sends a reader to a file or
section that is gone costs more than no comment. Checked: every path under one of our folders
(`engine/ml/train.py`, `engine/ml/prep/`, `engine/data/datasets`), every reference to a `.md`
file, and every README section named in the code as `README, "Section"` or `README: Section`.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.commands import ROOT

FOLDERS = ("engine", "dashboard", "db", "tests", "bench", "docs")
SCANNED = [
    p
    for folder in ("engine", "dashboard", "db", "tests", "bench")
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in (".py", ".md", ".html", ".toml") and p.is_file() and p != Path(__file__)
] + [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]

# Paths named on purpose although they do not exist here.
ABSENT_ON_PURPOSE = {
    "dashboard/pages/",  # tests/test_dashboard.py asserts that this folder never exists
}

# A path starts at one of our folders, not inside a longer word or path ("tests/" in
# "/work/tests/"), and ends before punctuation that closes a sentence.
PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(FOLDERS)})/[\w./*-]*[\w/*])")
MARKDOWN = re.compile(r"(?<![\w./-])([\w./-]+\.md)\b")
README_SECTION = re.compile(r"README(?:, \"([^\"]+)\"|: ([A-Z][\w -]+))")


def _exists(ref: str) -> bool:
    parts = ref.rstrip("/").split("/")
    if ref in ABSENT_ON_PURPOSE or any(p.startswith(".") for p in parts):
        return True  # or made by a command, as bench/.venv by `make bench`
    if len(parts) == 2 and parts[1] in FOLDERS:
        return True  # "db/engine functions": two of our folders, said as "db or engine"
    if "*" in ref:
        return any(ROOT.glob(ref))
    path = ROOT / ref.rstrip("/")
    # A module may be named without its suffix: "engine/data/datasets" is datasets.py.
    return path.exists() or path.with_suffix(".py").exists()


def _references(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = []
    for file in SCANNED:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            for match in pattern.finditer(line):
                ref = next(g for g in match.groups() if g)
                found.append((f"{file.relative_to(ROOT)}:{number}", ref.strip()))
    return found


def test_paths_in_comments_and_docs_exist() -> None:
    refs = _references(PATH)
    assert len(refs) > 50  # the pattern still finds the references there are
    missing = [f"{where}: {ref}" for where, ref in refs if not _exists(ref)]
    assert missing == [], "references to files that do not exist:\n" + "\n".join(missing)


def test_markdown_files_named_in_the_code_are_in_the_repository() -> None:
    refs = _references(MARKDOWN)
    assert ("README.md", "README.md") not in refs  # sanity: positions, not the files themselves
    missing = [
        f"{where}: {ref}"
        for where, ref in refs
        if not (ROOT / ref).exists() and not list(ROOT.rglob(Path(ref).name))
    ]
    assert missing == [], "markdown files that are not in the repository:\n" + "\n".join(missing)


def test_readme_sections_named_in_the_code_exist() -> None:
    headings = [
        line.lstrip("#").strip()
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    refs = _references(README_SECTION)
    assert refs  # the pattern still finds the references there are
    missing = [
        f"{where}: README section {ref!r}"
        for where, ref in refs
        if not any(h.startswith(ref) for h in headings)
    ]
    assert missing == [], "README sections that do not exist:\n" + "\n".join(missing)
