"""Block means: the one way the package shrinks an image by a whole factor (thumbnails, pyramids, working scale).

Examples
--------
>>> image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
>>> block_mean(image, 2)[..., 0]
array([[ 3,  5],
       [11, 13]], dtype=uint8)
>>> block_mean(image[:3, :3], 2)[..., 0]          # the edge replicated
array([[ 3,  4],
       [ 9, 10]], dtype=uint8)
>>> block_mean(image[:3, :3], 2, edge="drop")[..., 0]
array([[3]], dtype=uint8)
>>> block_mean(np.moveaxis(image, -1, 0), 2, axis=1)[0]  # channels first
array([[ 3,  5],
       [11, 13]], dtype=uint8)
"""

from __future__ import annotations

import numpy as np

EDGES = ("replicate", "drop")


def block_mean(image: np.ndarray, factor: int, *, axis: int = -3, edge: str = "replicate") -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks of ``image``, whose y and x are the axes ``axis`` and ``axis + 1``.

    ``edge``: ``replicate`` extends a partial last block by its edge pixels;
    ``drop`` leaves it out. An integer image's means are rounded half up and
    summed in integers (a few times faster than a floating-point mean, and
    the same on every machine); a floating-point image gets the plain mean in
    its own precision.
    """
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {', '.join(EDGES)}, not {edge!r}")
    if factor == 1:
        return image
    y = axis % image.ndim
    h, w = image.shape[y], image.shape[y + 1]
    if edge == "drop":
        image = image[(slice(None),) * y + (slice(0, h // factor * factor), slice(0, w // factor * factor))]
    elif h % factor or w % factor:
        pad = [(0, 0)] * image.ndim
        pad[y], pad[y + 1] = (0, -h % factor), (0, -w % factor)
        image = np.pad(image, pad, mode="edge")
    oh, ow = image.shape[y] // factor, image.shape[y + 1] // factor
    if not np.issubdtype(image.dtype, np.integer):
        shape = image.shape[:y] + (oh, factor, ow, factor) + image.shape[y + 2:]
        return image.reshape(shape).mean(axis=(y + 1, y + 3))
    total = np.zeros(image.shape[:y] + (oh, ow) + image.shape[y + 2:], np.uint32)
    lead = (slice(None),) * y
    for dy in range(factor):
        for dx in range(factor):
            total += image[lead + (slice(dy, None, factor), slice(dx, None, factor))]
    total += factor * factor // 2
    total //= factor * factor
    return total.astype(image.dtype)
