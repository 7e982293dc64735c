"""What an uploaded file really is, from its first bytes, whatever its name says.

A ZIP, a picture or a program renamed `.csv` would otherwise reach the CSV reader and come back
as "re-save it as UTF-8", which sends the user the wrong way. Each known signature gets a name a
person recognises and what to upload instead. Pure: no database, no Streamlit; the table reader
(engine/data/tables.py) and the image-ZIP ingest (engine/data/datasets.py) call it, so the
Datasets page and `seedlab datasets add` say the same thing.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine.core.errors import DatasetError

HEAD_BYTES = 8192  # every signature below sits in the first few bytes; text checks use a few KB

_TABLE_ADVICE = "Upload a CSV, TSV or Parquet file with a header row and one row per example."
_SAVE_AS_CSV = (
    "open it in its spreadsheet program, choose File → Save As → 'CSV UTF-8', and upload the "
    ".csv file."
)
_IMAGES_ADVICE = (
    "To train on images, put them in one folder per class (cats/001.png, dogs/002.jpg), zip the "
    "folders and upload the .zip."
)


@dataclass(frozen=True)
class FileKind:
    """A recognised kind of file: `key` for code and tests, `what` for people."""

    key: str
    what: str  # "a PNG image", with its article, to read "x.csv is a PNG image"
    family: str  # archive | office | image | program | compressed | table | text | database


# Plain signatures at offset 0 (longest first where one is a prefix of another).
_MAGIC: tuple[tuple[bytes, FileKind], ...] = (
    (b"\x89PNG\r\n\x1a\n", FileKind("png", "a PNG image", "image")),
    (b"\xff\xd8\xff", FileKind("jpeg", "a JPEG image", "image")),
    (b"GIF87a", FileKind("gif", "a GIF image", "image")),
    (b"GIF89a", FileKind("gif", "a GIF image", "image")),
    (b"II*\x00", FileKind("tiff", "a TIFF image", "image")),
    (b"MM\x00*", FileKind("tiff", "a TIFF image", "image")),
    (b"%PDF-", FileKind("pdf", "a PDF document", "office")),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2: .xls, and old .doc/.ppt
        FileKind("xls", "an old-format Excel workbook (.xls) or Office document", "office"),
    ),
    (b"\x7fELF", FileKind("elf", "a program (a Linux executable)", "program")),
    (b"\xfe\xed\xfa\xce", FileKind("macho", "a program (a macOS executable)", "program")),
    (b"\xfe\xed\xfa\xcf", FileKind("macho", "a program (a macOS executable)", "program")),
    (b"\xce\xfa\xed\xfe", FileKind("macho", "a program (a macOS executable)", "program")),
    (b"\xcf\xfa\xed\xfe", FileKind("macho", "a program (a macOS executable)", "program")),
    # 0xCAFEBABE opens both universal macOS programs and Java class files.
    (b"\xca\xfe\xba\xbe", FileKind("macho", "a program (macOS or Java)", "program")),
    (b"\x1f\x8b", FileKind("gzip", "a gzip-compressed file", "compressed")),
    (b"\xfd7zXZ\x00", FileKind("xz", "an xz-compressed file", "compressed")),
    (b"7z\xbc\xaf\x27\x1c", FileKind("7z", "a 7-Zip archive", "compressed")),
    (b"Rar!\x1a\x07", FileKind("rar", "a RAR archive", "compressed")),
    (b"\x28\xb5\x2f\xfd", FileKind("zstd", "a Zstandard-compressed file", "compressed")),
    (b"PAR1", FileKind("parquet", "a Parquet table", "table")),
    (b"SQLite format 3\x00", FileKind("sqlite", "an SQLite database", "database")),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_ZIP = FileKind("zip", "a ZIP archive", "archive")
# Office Open XML and OpenDocument files are ZIPs; their members say which program made them.
_XLSX = FileKind("xlsx", "an Excel workbook (.xlsx)", "office")
_DOCX = FileKind("docx", "a Word document (.docx)", "office")
_PPTX = FileKind("pptx", "a PowerPoint presentation (.pptx)", "office")
_ODS = FileKind("ods", "an OpenDocument spreadsheet (.ods)", "office")
_ODF = FileKind("odf", "an OpenDocument file (.odt, .odp)", "office")
_EXE = FileKind("exe", "a program (a Windows executable)", "program")
_WEBP = FileKind("webp", "a WebP image", "image")
_BMP = FileKind("bmp", "a BMP image", "image")
_BZIP2 = FileKind("bzip2", "a bzip2-compressed file", "compressed")
_SCRIPT = FileKind("script", "a script (a program: its first line starts with #!)", "program")
_HTML = FileKind("html", "a web page (HTML)", "text")
_JSON = FileKind("json", "a JSON file", "text")
_XML = FileKind("xml", "an XML document", "text")
_JSON_START = re.compile(rb"^(\{|\[\s*[\[{\"])")


def _zip_kind(names: list[str], mimetype: bytes) -> FileKind:
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return _ODS
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return _ODF
    for prefix, kind in (("xl/", _XLSX), ("word/", _DOCX), ("ppt/", _PPTX)):
        if "[Content_Types].xml" in names and any(n.startswith(prefix) for n in names):
            return kind
    return _ZIP


def _zip_members(source: bytes | Path) -> tuple[list[str], bytes]:
    """Member names and the OpenDocument `mimetype` member (b'' when none), or ([], b'') when
    the central directory cannot be read (a truncated or fake ZIP: its reader says so)."""
    try:
        handle = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError):
        return [], b""
    with handle:
        names = handle.namelist()
        mimetype = b""
        info = next((i for i in handle.infolist() if i.filename == "mimetype"), None)
        if info is not None and info.file_size < 200:
            try:
                mimetype = handle.read(info).strip()
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
                mimetype = b""
        return names, mimetype


def _text_kind(head: bytes) -> FileKind | None:
    """Text formats that are not tables: a web page (often what a download link returned
    instead of the CSV), JSON, XML, a script."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:256]
    lowered = start.lower()
    if head.startswith(b"#!"):
        return _SCRIPT
    if lowered.startswith((b"<!doctype html", b"<html")):
        return _HTML
    if lowered.startswith(b"<?xml"):
        return _XML
    if _JSON_START.match(start):
        return _JSON
    return None


def sniff(source: bytes | Path) -> FileKind | None:
    """The kind of file `source` (the whole content, or a file on disk) is, from its first
    bytes; None for anything unrecognised — plain text tables are, on purpose."""
    if isinstance(source, bytes):
        head = source[:HEAD_BYTES]
    else:
        with Path(source).open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    if head.startswith(_ZIP_MAGIC):
        return _zip_kind(*_zip_members(source))
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    # Two-letter signatures need more proof: a CSV header may well start with "BM" or "MZ".
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _WEBP
    if head[:2] == b"BM" and len(head) > 10 and head[6:10] == b"\x00\x00\x00\x00":
        return _BMP
    if head[:2] == b"MZ" and b"\x00" in head[2:64]:  # text never holds NUL bytes
        return _EXE
    if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return _BZIP2
    return _text_kind(head)


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut at the end of the sample
    return True


def _advice_for_table(kind: FileKind, filename: str, zip_names: list[str]) -> str:
    stem = Path(filename).stem
    if kind.key == "zip":
        tables = [n for n in zip_names if n.lower().endswith((".csv", ".tsv", ".parquet"))]
        if len(tables) == 1:
            return f"Unzip it and upload {tables[0]!r}, the table inside."
        return (
            "A ZIP is for image datasets (one folder per class): upload it under a .zip name "
            "to add it as images, or unzip it and upload the CSV or Parquet file inside."
        )
    if kind.key == "parquet":
        return f"Rename it {stem}.parquet and upload it again."
    if kind.key in ("xlsx", "xls", "ods"):
        return f"To train on it, {_SAVE_AS_CSV}"
    if kind.family == "image":
        return f"A table is needed here. {_IMAGES_ADVICE}"
    if kind.family == "compressed":
        return "Decompress it and upload the CSV or Parquet file inside."
    if kind.key == "html":
        return (
            "A download link often returns a login or error page instead of the file: open "
            "the page, download the CSV file itself, and upload that."
        )
    if kind.key == "sqlite":
        return (
            "Export the table you need as CSV (for example: sqlite3 -header -csv FILE "
            f"'select * from TABLE' > {stem}.csv) and upload the .csv."
        )
    if kind.family in ("office", "text"):
        return "Export the data as a CSV table (a header row, one row per example) and upload that."
    return _TABLE_ADVICE  # programs: nothing to convert, only the right file to pick


def check_table_upload(raw: bytes, filename: str) -> None:
    """Refuse, naming what the file is, when the bytes given where a table is expected are
    something else: a ZIP, an image, a workbook, a program, a compressed file, a web page…"""
    kind = sniff(raw)
    suffix = Path(filename).suffix.lower()
    is_parquet_name = suffix in (".parquet", ".pq")
    if kind is not None and kind.key == "parquet" and is_parquet_name:
        return
    if kind is None:
        if is_parquet_name and _looks_like_text(raw[:HEAD_BYTES]):
            raise DatasetError(
                f"{filename} is a text file, not Parquet (a Parquet file starts with 'PAR1'). "
                f"If it is a comma-separated table, rename it {Path(filename).stem}.csv and "
                "upload it again."
            )
        return
    names = _zip_members(raw)[0] if kind.key == "zip" else []
    raise DatasetError(
        f"{filename} is {kind.what}, not a table Seedlab can read. "
        + _advice_for_table(kind, filename, names)
    )


def check_image_zip(source: bytes | Path, filename: str) -> None:
    """Refuse, naming what the file is, when a file given as a ZIP of image folders is not a
    ZIP, or is an Office document (those are ZIPs too). A fake or damaged ZIP is left to the
    ZIP reader, which says which member is wrong."""
    kind = sniff(source)
    if kind is not None and kind.key == "zip":
        return
    if kind is None:
        if isinstance(source, bytes):
            head = source[:HEAD_BYTES]
        else:
            with Path(source).open("rb") as fh:
                head = fh.read(HEAD_BYTES)
        if _looks_like_text(head):
            raise DatasetError(
                f"{filename} is a text file, not a ZIP archive. If it is a table, rename it "
                f"{Path(filename).stem}.csv and upload it again. {_IMAGES_ADVICE}"
            )
        return
    if kind.key == "parquet":
        advice = f"To add it as a table, rename it {Path(filename).stem}.parquet."
    elif kind.key in ("xlsx", "xls", "ods"):
        advice = f"To add it as a table, {_SAVE_AS_CSV}"
    elif kind.family == "image":
        advice = f"An image dataset needs many images. {_IMAGES_ADVICE}"
    else:
        advice = _IMAGES_ADVICE
    raise DatasetError(f"{filename} is {kind.what}, not a ZIP of image folders. {advice}")
