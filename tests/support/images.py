"""Small generated images for the image tests: coloured shapes on noise, zipped as an upload."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image, ImageDraw

SHAPE_COLOURS = {"circle": (220, 40, 40), "square": (40, 160, 40), "triangle": (40, 60, 220)}


def image_bytes(
    shape: str, seed: int, size: int = 16, fmt: str = "PNG", mode: str = "RGB"
) -> bytes:
    """One coloured shape on a noisy background, at a seed-dependent place and size."""
    rng = np.random.default_rng(seed)
    background = rng.integers(200, 256, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    r = int(rng.integers(size // 4, size // 2 - 1))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    colour = SHAPE_COLOURS[shape]
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    out = io.BytesIO()
    image.convert(mode).save(out, format=fmt)
    return out.getvalue()


def make_zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, payload in members:
            zf.writestr(name, payload)
    return buffer.getvalue()


def shapes_members(per_class: int = 4, prefix: str = "") -> list[tuple[str, bytes]]:
    """Three classes; the formats and modes vary so every decoder and conversion runs."""
    formats = [("PNG", "RGB", ".png"), ("JPEG", "RGB", ".jpg"), ("BMP", "RGB", ".bmp")]
    formats += [("WEBP", "RGB", ".webp"), ("PNG", "RGBA", ".png"), ("PNG", "L", ".png")]
    members = []
    for k, shape in enumerate(SHAPE_COLOURS):
        for i in range(per_class):
            fmt, mode, suffix = formats[(i + k) % len(formats)]
            members.append(
                (
                    f"{prefix}{shape}/{i:03d}{suffix}",
                    image_bytes(shape, 1000 * k + i, fmt=fmt, mode=mode),
                )
            )
    return members
