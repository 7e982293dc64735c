"""Reading an uploaded image ZIP safely: check every member before anything is written.

Nothing here touches the disk. `plan_zip` looks at the member list only (names, links, counts,
declared sizes, compression ratios) and says which member is each class's image; `read_member`
reads one member with a hard size bound; `decode_image` proves the bytes are a real image of an
allowed format and size. Every error names the offending member.
"""

from __future__ import annotations

import io
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from engine.core.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
IMAGE_FORMATS = {"PNG", "JPEG", "BMP", "WEBP"}
# Files that operating systems add to folders; never data.
IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
IGNORED_FOLDERS = {"__macosx"}
# A member this small cannot be a bomb on its own (the total cap bounds the many-small case).
RATIO_CHECK_MIN_BYTES = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipCaps:
    max_members: int
    max_total_bytes: int
    max_ratio: float
    max_image_pixels: int


@dataclass
class ZipPlan:
    """The images to store: (member, class name) in archive order, each image's path inside
    the dataset ("cat/001.png", its row id), and what was skipped."""

    images: list[tuple[zipfile.ZipInfo, str]]
    classes: list[str]
    ignored: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    mode: str
    format: str


def _fail(member: str, problem: str) -> DatasetError:
    return DatasetError(f"ZIP member {member!r} {problem}. Nothing was stored.")


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path parts, after refusing anything that could land outside the folder."""
    name = info.filename
    if "\x00" in name:
        raise _fail(name, "has a NUL byte in its name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise _fail(name, "has an absolute path; the archive may only hold relative paths")
    parts = member_parts(unified)
    if ".." in parts:
        raise _fail(name, "points outside the archive ('..' in its path)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _fail(name, "is a symbolic link; zip the files themselves, not links to them")
    if info.flag_bits & 0x1:
        raise _fail(name, "is encrypted; upload a ZIP without a password")
    return parts


def _is_ignored(parts: tuple[str, ...]) -> bool:
    if any(p.lower() in IGNORED_FOLDERS for p in parts[:-1]):
        return True
    # Hidden files and folders (".git/", "._photo.jpg" resource forks) are not data either.
    return parts[-1].lower() in IGNORED_NAMES or any(p.startswith(".") for p in parts)


def _sorted_classes(names: set[str]) -> list[str]:
    try:
        return sorted(names, key=lambda n: (float(n), n))
    except ValueError:
        return sorted(names)


def plan_zip(zf: zipfile.ZipFile, caps: ZipCaps) -> ZipPlan:
    """Check every member's name, type and size; return the images grouped by class folder."""
    infos = zf.infolist()
    if len(infos) > caps.max_members:
        raise _fail(
            infos[caps.max_members].filename,
            f"is past the limit of {caps.max_members:,} members "
            f"(the archive has {len(infos):,}; SEEDLAB_MAX_ZIP_MEMBERS)",
        )
    total = 0
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    folders: set[tuple[str, ...]] = set()
    ignored: list[str] = []
    for info in infos:
        parts = _member_parts(info)
        if not parts:
            continue
        if _is_ignored(parts):
            ignored.append(info.filename)
            continue
        if info.is_dir():
            folders.add(parts)
            continue
        total += info.file_size
        if total > caps.max_total_bytes:
            raise _fail(
                info.filename,
                f"takes the unpacked size past the limit of {caps.max_total_bytes / 1e6:,.0f} MB "
                "(SEEDLAB_MAX_UNZIPPED_MB)",
            )
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size >= RATIO_CHECK_MIN_BYTES and ratio > caps.max_ratio:
            raise _fail(
                info.filename,
                f"unpacks {ratio:,.0f} times larger than it is packed (limit {caps.max_ratio:g}, "
                "SEEDLAB_MAX_ZIP_RATIO); this looks like a zip bomb",
            )
        files.append((info, parts))
        folders.update(parts[:i] for i in range(1, len(parts)))

    pictures = [p for _, p in files if PurePosixPath(p[-1]).suffix.lower() in IMAGE_SUFFIXES]
    prefix = wrapping_prefix(pictures)

    images: list[tuple[zipfile.ZipInfo, str]] = []
    paths: list[str] = []
    seen: set[str] = set()
    for info, parts in files:
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            ignored.append(info.filename)
            continue
        parts = parts[len(prefix) :]
        if len(parts) < 2:
            raise _fail(
                info.filename,
                "is not inside a class folder; put each image in a folder named after its "
                "class (cats/001.jpg, dogs/002.jpg)",
            )
        path = "/".join(parts)
        if path in seen:  # the path is the image's row id, so it must be unique
            raise _fail(info.filename, "appears twice in the archive; keep one and zip again")
        seen.add(path)
        images.append((info, parts[0]))
        paths.append(path)

    classes = _sorted_classes({c for _, c in images})
    class_folders = {
        f[len(prefix)] for f in folders if len(f) > len(prefix) and f[: len(prefix)] == prefix
    }
    empty = sorted(class_folders - set(classes))
    if empty:
        raise DatasetError(
            f"Class folder {empty[0] + '/'!r} has no images ({', '.join(IMAGE_SUFFIXES)}). "
            "Add images to it or remove it, then upload again. Nothing was stored."
        )
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if classes else "no images in class folders"
        raise DatasetError(
            f"The ZIP has {found}; a classifier needs at least two class folders, each holding "
            "that class's images (cats/001.jpg, dogs/002.jpg). Nothing was stored."
        )
    return ZipPlan(images=images, classes=classes, ignored=ignored, paths=paths)


def member_parts(name: str) -> tuple[str, ...]:
    """A member name's path parts, backslashes read as folder separators."""
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def wrapping_prefix(pictures: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The folders that wrap every image (zipping a folder wraps everything in it:
    photos/cats/1.jpg → cats/1.jpg); what is left starts with the class folder."""
    prefix: tuple[str, ...] = ()
    while pictures and all(len(p) - len(prefix) >= 3 for p in pictures):
        tops = {p[len(prefix)] for p in pictures}
        if len(tops) != 1:
            break
        prefix = (*prefix, tops.pop())
    return prefix


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes. zipfile stops at the declared size and checks the CRC, so a member
    that lies about its size fails here rather than filling the disk."""
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise _fail(info.filename, f"cannot be unpacked ({exc})") from None
    if len(data) > info.file_size:
        raise _fail(info.filename, "is larger than its header says")
    return data


def decode_image(raw: bytes, member: str, max_pixels: int) -> DecodedImage:
    """Fully decode the bytes (Pillow), refusing other formats and oversized images."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(raw)) as image:
                if image.format not in IMAGE_FORMATS:
                    raise _fail(
                        member,
                        f"is a {image.format} image; use PNG, JPEG, BMP or WebP",
                    )
                width, height = image.size
                if width * height > max_pixels:
                    raise _fail(
                        member,
                        f"is {width}×{height} pixels, over the limit of {max_pixels:,} "
                        "(SEEDLAB_MAX_IMAGE_PIXELS); shrink it",
                    )
                image.load()
                return DecodedImage(width, height, image.mode, image.format)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _fail(member, "is a decompression bomb (far too many pixels)") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            detail = str(exc).split("\n")[0][:120]
            raise _fail(member, f"does not decode as an image ({detail})") from None
