"""Import what the pages import, once, in the background as the dashboard server starts.

The pages are scripts that Streamlit runs on each visit; the modules they import load on the
first visit that needs them. On a busy machine that is seconds, paid by whoever comes first:
the first Run page after Home's demo click drew its first curve point ~8 s after the click,
most of it imports. dashboard/web.py calls `start()` from the server's lifespan, so the
server has them before anyone asks.

The Playground's modules (torch, scikit-learn: ~1,700 modules, 10 s and hundreds of MB) are
left to its first visit: memory a dashboard may never need.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger("seedlab.warm")

DASHBOARD = Path(__file__).resolve().parent
# Home and the Run page first: the demo click goes from one to the other.
FIRST = ("app.py", "views/home.py", "views/run_detail.py")
SKIPPED = {"views/playground.py"}
# Imported inside functions on the demo click's path (dashboard/data.py queue_demo_run).
LAZY = ("engine.services.runs", "engine.services.launch", "engine.data.demo_run")


def page_files() -> list[Path]:
    """app.py and the page files, Home and the Run page first, the Playground left out."""
    first = [DASHBOARD / name for name in FIRST]
    rest = sorted(p for p in (DASHBOARD / "views").glob("*.py") if p not in first)
    return [p for p in first + rest if str(p.relative_to(DASHBOARD)) not in SKIPPED]


def module_imports(path: Path) -> list[str]:
    """The modules a script imports at its top level (`import x`, `from x import y`)."""
    names: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            # `from dashboard.components import report_section`: the names may be modules.
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def modules_to_warm() -> list[str]:
    names = [name for path in page_files() for name in module_imports(path)]
    return list(dict.fromkeys([*names, *LAZY]))


def _is_module(name: str) -> bool:
    # find_spec imports the parent package; a name that is a function or a class of a module
    # (`from x import f` gave "x.f") is no module of its own.
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def warm_imports() -> int:
    """Import each module the pages import; returns how many were imported. A module that
    fails to import is logged and skipped: the page that needs it shows the error itself."""
    started, done = time.perf_counter(), 0
    for name in modules_to_warm():
        try:
            if _is_module(name):
                importlib.import_module(name)
                done += 1
        except Exception:  # noqa: BLE001 - never stop the server over a warm-up
            log.warning("warming up: importing %s failed", name, exc_info=True)
    # The modules' objects live as long as the server: out of the collector's sight, each
    # automatic full collection no longer walks them (hundreds of thousands of objects).
    gc.freeze()
    log.info("warmed up %d page modules in %.1f s", done, time.perf_counter() - started)
    return done


def start() -> threading.Thread:
    """`warm_imports` in a daemon thread: the server answers while it runs, and a page that
    needs a module meanwhile waits only for that module (Python's per-module import lock)."""
    thread = threading.Thread(target=warm_imports, name="seedlab-warm-imports", daemon=True)
    thread.start()
    return thread
