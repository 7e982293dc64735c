"""Where the checkout lives: the dashboard's app file, migrations and `.streamlit/` are found
from here (an editable install runs the code in place)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
