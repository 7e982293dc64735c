"""The Datasets page's view of an image dataset: class counts, size stats, a sample grid."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st
from PIL import Image, ImageOps

from dashboard import data
from db.records import DatasetRecord
from engine.report import charts

SAMPLES_PER_CLASS = 8
THUMB_SIDE = 72
THUMB_GAP = 6  # pixels of white between thumbnails in a class's strip
MAX_CLASSES_SHOWN = 30


def _thumbnail(data: bytes, side: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        # Tiny images (8×8 digits) are enlarged with hard pixel edges; large ones shrunk smoothly.
        smaller = max(image.size) < side
        resample = Image.Resampling.NEAREST if smaller else Image.Resampling.LANCZOS
        return np.asarray(ImageOps.pad(image, (side, side), resample, color=(255, 255, 255)))


@st.cache_data(ttl=3600, show_spinner=False, max_entries=16)
def _samples(dataset_id: int, path: str, per_class: int) -> dict[str, list[np.ndarray]]:
    from engine.data.image_store import sample_images

    record = next(r for r in data.datasets() if r.id == dataset_id and r.path == path)
    images = sample_images(data.get_settings(), record, per_class)
    return {name: [_thumbnail(b, THUMB_SIDE) for b in blobs] for name, blobs in images.items()}


def _strip(thumbs: list[np.ndarray]) -> np.ndarray:
    """A class's thumbnails side by side in one picture, white gaps between them. One image per
    class fills its row (shrunk to fit a narrow column) where a list of images wrapped and left
    one orphan thumbnail on a second row."""
    gap = np.full((THUMB_SIDE, THUMB_GAP, 3), 255, dtype=np.uint8)
    parts = [part for thumb in thumbs for part in (gap, thumb)][1:]
    return np.concatenate(parts, axis=1)


def _side(stats: dict) -> str:
    low, mid, high = stats["min"], stats["median"], stats["max"]
    return f"{low:g}" if low == high else f"{low:g}–{high:g} (median {mid:g})"


def show_image_dataset(record: DatasetRecord) -> None:
    schema = record.schema
    stats = schema.get("image_stats", {})
    if stats:
        modes = ", ".join(f"{m} {n:,}" for m, n in stats["modes"].items())
        st.caption(
            f"Width {_side(stats['width'])} px · height {_side(stats['height'])} px · "
            f"colour modes: {modes} · a run resizes to {schema['auto_image_size']} px and "
            f"{schema['auto_channels']} channel(s) unless its image options say otherwise."
        )
    if schema.get("ignored_members"):
        st.caption(f"{schema['ignored_members']:,} non-image files in the ZIP were left out.")
    grid_col, chart_col = st.columns([3, 2])
    with chart_col:
        st.markdown("**Images per class**")
        st.plotly_chart(charts.class_balance(schema["class_counts"]), height=300)
    with grid_col:
        st.markdown("**Sample images**")
        with data.shown_errors("reading the sample images"):
            samples = _samples(record.id, record.path, SAMPLES_PER_CLASS)
            for name, thumbs in list(samples.items())[:MAX_CLASSES_SHOWN]:
                count = schema["class_counts"].get(name, len(thumbs))
                st.markdown(f"{data.md_text(name)} · {count:,} images")
                if thumbs:
                    st.image(_strip(thumbs), width="content")
            if len(samples) > MAX_CLASSES_SHOWN:
                st.caption(f"… and {len(samples) - MAX_CLASSES_SHOWN} more classes.")
