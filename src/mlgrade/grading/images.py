"""Images a learner's code saved, judged by their header before anything is decoded.

A PNG's size is in its header (IHDR); its pixels may be compressed a thousandfold, so a file
of a few hundred kilobytes can decode to gigabytes. :func:`png_size` reads the header only;
:func:`decode_png` refuses more than ``max_pixels`` from it, then decodes. Run the decoding and
whatever the grader computes from the pixels inside
:func:`mlgrade.grading.child.run_budgeted`, so the pixels never enter the grading process.
"""

from __future__ import annotations

import io

import numpy as np

from mlgrade.bridge.client import LearnerFailure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 12_000_000  # 4000 x 3000: a figure saved at 300 dpi, with room to spare


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None when ``data`` is not a PNG."""
    if data[:8] != PNG_MAGIC or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def decode_png(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The RGB pixels (height x width x 3, uint8) of a PNG of at most ``max_pixels``.

    A :class:`LearnerFailure` for a file that is not a PNG, is too large (checked from the
    header, before decoding) or is corrupt or truncated."""
    size = png_size(data)
    if size is None:
        raise LearnerFailure("the saved file is not a PNG image.")
    width, height = size
    if width * height > max_pixels:
        raise LearnerFailure(f"the saved PNG is {width} x {height} pixels, over the grader's "
                             f"limit of {max_pixels:,} pixels.")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()  # decodes every chunk: a truncated or corrupt file fails here
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        raise LearnerFailure("the saved file is not a readable PNG image (corrupt or "
                             "truncated).") from None
