"""The hostile-input corpus: files an attacker or a careless export would upload.

Small files are committed under tests/data/hostile/ (regenerate them with
`python -m tests.hostile_corpus`); the large ones (a million-column header, a huge line, a
zip bomb) are built here at test time, so the repository never holds them.
"""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HOSTILE_DIR = Path(__file__).resolve().parent / "data" / "hostile"

# Strings that must stay inert wherever they go: the DB, markdown, a spreadsheet.
SQL_NAMES = ["'; DROP TABLE runs;--", 'x" OR "1"="1', "%_\\"]
HTML_NAMES = [
    "<script>alert('name')</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1)) ![](http://example.invalid/t.png) :red[red] **bold**",
]
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,2)", "\t=1+1", "\r=1+1"]


# ---------------------------------------------------------------- small, committed


def formula_cells_csv() -> bytes:
    """A valid dataset whose text cells would run as spreadsheet formulas."""
    lines = ["note,x,label"]
    for i in range(12):
        formula = FORMULAS[i % len(FORMULAS)].replace("\t", "").replace("\r", "")
        lines.append(f'"{formula}",{i},{"ab"[i % 2]}')
    return ("\n".join(lines) + "\n").encode()


def latin1_csv() -> bytes:
    return "x,label\n1,café\n2,thé\n3,café\n".encode("latin-1")


def utf16_bom_csv() -> bytes:
    """What Excel's 'Unicode Text' writes: UTF-16 LE with a BOM, tab-separated."""
    text = "x\tlabel\n" + "".join(f"{i}\t{'ab'[i % 2]}é\n" for i in range(10))
    return text.encode("utf-16")  # Python writes the BOM first


def invalid_utf8_csv() -> bytes:
    """UTF-8 with a truncated sequence and an overlong encoding on line 3."""
    return b"x,label\n1,caf\xc3\xa9\n2,bad\xc3 \xc0\xaf\n3,ok\n"


def mixed_encoding_csv() -> bytes:
    """Mostly UTF-8, one line pasted from a latin-1 file."""
    return "x,label\n1,été\n".encode() + "2,été\n".encode("latin-1") + b"3,ok\n"


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def nested_list_parquet() -> bytes:
    return _parquet(pa.table({"x": [[1, 2], [3], []], "label": ["a", "b", "a"]}))


def nested_struct_parquet() -> bytes:
    points = [{"lat": 1.0, "lon": 2.0}, {"lat": 3.0, "lon": 4.0}, None]
    return _parquet(pa.table({"where": points, "x": [1, 2, 3], "label": ["a", "b", "a"]}))


def nested_after_nulls_parquet() -> bytes:
    """The nested values start after 300 empty rows: a check of the first rows misses them."""
    values = [None] * 300 + [[1, 2]] * 10
    labels = ["ab"[i % 2] for i in range(len(values))]
    return _parquet(pa.table({"x": list(range(len(values))), "v": values, "label": labels}))


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in entries:
            zf.writestr(info, payload)
    return buffer.getvalue()


def tiny_png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _two_good_classes() -> list[tuple[str, bytes]]:
    return [("cats/1.png", tiny_png()), ("dogs/1.png", tiny_png((30, 30, 200)))]


def zip_with(member: zipfile.ZipInfo | str, payload: bytes) -> bytes:
    return _zip([*_two_good_classes(), (member, payload)])


def symlink_zip() -> bytes:
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with(link, b"/etc/passwd")


def lying_png() -> bytes:
    """A real PNG signature and header claiming 100,000 × 100,000 pixels, and no pixels."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    body = struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + header + body + end


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()[:80]


def bad_configs() -> dict[str, str]:
    return {
        "out_of_range.yaml": "epochs: -3\nlearning_rate: 0\n",
        "wrong_type.yaml": "epochs: many\nhidden_sizes: {a: 1}\n",
        "python_tag.yaml": "epochs: !!python/object/apply:os.system ['touch pwned']\n",
        "not_a_mapping.json": "[1, 2, 3]\n",
    }


SMALL_FILES = {
    "formula_cells.csv": formula_cells_csv,
    "latin1.csv": latin1_csv,
    "utf16_bom.csv": utf16_bom_csv,
    "invalid_utf8.csv": invalid_utf8_csv,
    "mixed_encoding.csv": mixed_encoding_csv,
    "nested_list.parquet": nested_list_parquet,
    "nested_struct.parquet": nested_struct_parquet,
    "nested_after_nulls.parquet": nested_after_nulls_parquet,
    "zip_traversal.zip": lambda: zip_with("cats/../../../evil.png", tiny_png()),
    "zip_traversal_backslash.zip": lambda: zip_with("cats\\..\\..\\evil.png", tiny_png()),
    "zip_absolute.zip": lambda: zip_with("/tmp/evil.png", tiny_png()),
    "zip_drive_letter.zip": lambda: zip_with("C:/evil.png", tiny_png()),
    "zip_symlink.zip": symlink_zip,
    "zip_lying_png.zip": lambda: zip_with("cats/huge.png", lying_png()),
    "zip_truncated_png.zip": lambda: zip_with("cats/cut.png", truncated_png()),
    "zip_not_really.zip": lambda: b"PK\x03\x04 this is not a zip archive",
    "lying_size.png": lying_png,
    "names.json": lambda: json.dumps(
        {"sql": SQL_NAMES, "html": HTML_NAMES, "formulas": FORMULAS}, indent=2
    ).encode(),
}


def read(name: str) -> bytes:
    return (HOSTILE_DIR / name).read_bytes()


# ---------------------------------------------------------------- large, built at test time


def million_columns_csv(columns: int = 1_000_000) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    return (header + "\n" + ",".join("1" for _ in range(columns)) + "\n").encode()


def huge_line_csv(cell_bytes: int = 3_000_000) -> bytes:
    """One cell of a few MB with no line break, between ordinary rows."""
    rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(30))
    return b"x,label\n" + rows.encode() + b"1," + b"A" * cell_bytes + b"\n"


def zip_bomb() -> bytes:
    """20 MB of zeros in one member, packed to ~20 kB (ratio ~1000)."""
    return zip_with("cats/bomb.png", b"\x00" * (20 << 20))


def wide_parquet(columns: int = 6_000) -> bytes:
    return _parquet(pa.table({f"c{i}": [1] for i in range(columns)}))


def wide_frame(columns: int) -> pd.DataFrame:
    return pd.DataFrame({f"c{i}": [1, 2] for i in range(columns)})


if __name__ == "__main__":
    HOSTILE_DIR.mkdir(parents=True, exist_ok=True)
    for name, build in SMALL_FILES.items():
        (HOSTILE_DIR / name).write_bytes(build())
    for name, text in bad_configs().items():
        (HOSTILE_DIR / name).write_text(text)
    print(f"wrote {len(SMALL_FILES) + len(bad_configs())} files to {HOSTILE_DIR}")
