"""A JPEG's header read from its bytes, and its grey picture decoded at a reduced scale by OpenCV.

``lstmimg check`` reads every file once; for thousands of small JPEGs Pillow's header parsing (Python
code, ~0.1 ms a file) costs more than the decoding itself. Here the header is a few struct reads and the
decode one OpenCV call at the scale Pillow's ``draft`` would pick, to the same pixels. Anything odd (no
end marker, as in a truncated file; EXIF, whose orientation Pillow reads; CMYK; a marker out of place)
returns None, and the caller reads the file with Pillow as before.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)
_REDUCED = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) of a JPEG's bytes, or None where they are not a plain whole JPEG of
    1 or 3 components without EXIF (the caller then asks Pillow)."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":  # no end marker: truncated, or bytes after it
        return None
    pos, n, frame = 2, len(data), None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # a marker without a length, out of place before the scan
            return None
        if marker == 0xDA:  # start of scan: every header segment has been seen
            if frame is None or frame[2] not in (1, 3) or 0 in frame[:2]:
                return None
            return frame
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\0\0":
            return None
        if marker in _SOF and pos + 10 <= n:
            _, h, w, components = struct.unpack_from(">BHHB", data, pos + 4)
            frame = (h, w, components)
        pos += 2 + length
    return None


def draft_scale(height: int, width: int, at_least: int) -> int:
    """The reduced scale (8, 4, 2 or 1) Pillow's ``draft`` picks to keep ``at_least`` pixels a side."""
    scale = min(width // at_least, height // at_least)
    return next((s for s in (8, 4, 2, 1) if scale >= s), 1)


def grey_at_scale(data: bytes, scale: int) -> np.ndarray | None:
    """The JPEG's grey picture decoded at 1/``scale`` (uint8 ``(ceil(H/scale), ceil(W/scale))``, as stored:
    orientation not applied), or None where OpenCV cannot decode it."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
