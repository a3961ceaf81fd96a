"""Where a planned plane crosses a localizer image: the line drawn on overlays."""

import numpy as np

from isp_node.geometry.planes import Plane
from isp_node.pipeline.slices import ImageSlice

PARALLEL_EPSILON = 1e-6


def plane_image_line(plane: Plane, image: ImageSlice) -> np.ndarray | None:
    """End points ((row, col), (row, col)) of the plane's intersection with the image's
    field of view, in pixel coordinates; None when they do not cross inside it."""
    # (position + c*dc*row + r*dr*col - centre) . n = 0  <=>  a*r + b*c + k = 0
    n = plane.normal
    a = image.spacing[0] * (image.col @ n)
    b = image.spacing[1] * (image.row @ n)
    k = (image.position - plane.centre) @ n
    if abs(a) < PARALLEL_EPSILON and abs(b) < PARALLEL_EPSILON:
        return None
    rows, cols = image.shape
    r_max, c_max = rows - 1, cols - 1
    points = []
    if abs(b) > PARALLEL_EPSILON:  # crossings of the left and right borders (c fixed)
        for r in (0.0, r_max):
            c = -(a * r + k) / b
            if 0 <= c <= c_max:
                points.append((r, c))
    if abs(a) > PARALLEL_EPSILON:  # crossings of the top and bottom borders (r fixed)
        for c in (0.0, c_max):
            r = -(b * c + k) / a
            if 0 <= r <= r_max:
                points.append((r, c))
    unique = []
    for p in points:
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 1e-6 for q in unique):
            unique.append(p)
    if len(unique) < 2:
        return None
    # the two points farthest apart (a line through a corner can yield three)
    pairs = [(i, j) for i in range(len(unique)) for j in range(i + 1, len(unique))]
    i, j = max(pairs, key=lambda ij: np.hypot(*np.subtract(unique[ij[0]], unique[ij[1]])))
    return np.array([unique[i], unique[j]])
