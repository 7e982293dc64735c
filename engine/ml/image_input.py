"""One uploaded image (bytes or a file) → a decoded PIL image, or an error that says what to do.

For prediction (Playground upload or camera, `seedlab predict --image`): the image is decoded in
full here, so a truncated file or an unknown colour mode fails with a sentence now instead of a
traceback inside the model's preprocessing.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from engine.ml.predictor import PredictorError

# Far above any photo a person uploads to try a model; beyond it decoding costs seconds and
# hundreds of MB (Pillow's own bomb check only warns below twice its limit).
MAX_PIXELS = 40_000_000


def read_image(data: bytes, name: str = "the upload") -> Image.Image:
    """A fully decoded image (first frame of an animation) from the bytes of an image file."""
    if not data:
        raise PredictorError(f"{name} is empty: upload a PNG or JPEG image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise PredictorError(
                        f"{name} is {opened.width}×{opened.height} pixels; images up to "
                        f"{MAX_PIXELS // 1_000_000} megapixels are accepted. Resize it first."
                    )
                opened.seek(0)
                opened.load()
                image = opened.copy()
    except PredictorError:
        raise
    except UnidentifiedImageError:
        raise PredictorError(
            f"{name} is not an image Seedlab can read: upload a PNG, JPEG, GIF, BMP or WebP file."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PredictorError(f"{name} has too many pixels to decode safely; resize it.") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise PredictorError(
            f"{name} could not be decoded ({exc}); the file may be truncated. Save it again "
            "as PNG or JPEG."
        ) from None
    try:  # the models take L or RGB; one pixel shows whether this mode converts
        image.crop((0, 0, 1, 1)).convert("RGB")
    except (ValueError, OSError):
        raise PredictorError(
            f"{name} has the colour mode {image.mode!r}, which the model cannot take; save it "
            "as an 8-bit grayscale or RGB PNG or JPEG."
        ) from None
    return image


def read_image_file(path: Path | str) -> Image.Image:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PredictorError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    return read_image(data, name=str(path))
