"""The dashboard server's warm start (dashboard/warm.py): the pages' modules imported once in the
background at start, so the first visit of a page (the Run page after Home's demo click) does
not wait for them; the Playground's torch is left to its own first visit."""

from __future__ import annotations

import json
import subprocess
import sys

from dashboard import warm
from tests.support.commands import ROOT, child_env


def test_the_run_pages_modules_are_among_those_warmed() -> None:
    names = warm.modules_to_warm()
    # `from dashboard.components import report_section` names a module; so does a plain import.
    assert "dashboard.components.report_section" in names
    assert "engine.services.curves" in names and "engine.report.charts" in names
    assert "engine.services.launch" in names  # imported by the demo click itself
    # Home and the Run page come first; the Playground is not read at all.
    files = [str(p.relative_to(ROOT / "dashboard")) for p in warm.page_files()]
    assert files[:3] == ["app.py", "views/home.py", "views/run_detail.py"]
    assert "views/playground.py" not in files and "views/compare.py" in files


def test_warming_imports_the_pages_modules_but_not_torch() -> None:
    """In a fresh interpreter, as in a server just started."""
    script = (
        "import json, sys\n"
        "from dashboard import warm\n"
        "warm.start().join(120)\n"
        "print(json.dumps({m: m in sys.modules for m in "
        "('dashboard.components.report_section', 'engine.services.curves', "
        "'engine.services.launch', 'torch', 'engine.data.demo')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {
        "dashboard.components.report_section": True,
        "engine.services.curves": True,
        "engine.services.launch": True,
        "torch": False,  # the Playground's, left to its first visit
        "engine.data.demo": False,  # scikit-learn's datasets: a click no longer needs them
    }, loaded
