"""CSV files that are safe to open in a spreadsheet (no formula injection).

Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` (or a
tab or carriage return before one) as a formula: a run named `=HYPERLINK(...)` or a dataset
value `=cmd|' /C calc'!A0` would execute on the machine of whoever opens the export. OWASP's
advice, followed here: prefix such text cells with a single quote, which spreadsheets show as
plain text. Numbers stay numbers (-0.5 is data, not a formula); only text cells change.
Call `escape_formulas` on every frame just before `to_csv` of a file a user downloads.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# Text that is only a number ("-3", "+1.5e3") is read as that number, never as a formula.
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: object) -> object:
    """The value, with a leading quote if a spreadsheet would run it as a formula."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_PREFIXES)
        and not _PLAIN_NUMBER.match(value)
    ):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame whose text cells and column names cannot run as formulas."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            out[col] = series.map(escape_cell, na_action="ignore")
    out.columns = [escape_cell(c) for c in out.columns]
    return out


def to_safe_csv(frame: pd.DataFrame, **to_csv_args: object) -> str:
    """`frame.to_csv(**to_csv_args)` with formulas escaped; the text of a downloadable file."""
    return escape_formulas(frame).to_csv(**to_csv_args)
