"""Planned planes drawn on localizer images: the lines, where their labels go, and
an RGB rendering with the lines burned in (secondary captures, the demo's PNG)."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from isp_node.geometry.catalogue import PLANE_KEYS
from isp_node.geometry.intersections import plane_image_line
from isp_node.outputs.localizer import Localizer
from isp_node.pipeline.result import PlanningResult
from isp_node.pipeline.slices import ImageSlice

LABEL_FRACTION = 0.12  # labels sit this far along the line from its first end
# One colour per catalogue plane (RGB), cycled for keys outside the catalogue.
PALETTE = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 120, 255),
           (255, 150, 60), (160, 140, 255), (0, 230, 200), (255, 255, 255), (200, 255, 0),
           (255, 90, 160), (90, 130, 255), (190, 120, 60), (0, 255, 255))


@dataclass(frozen=True)
class PlanLine:
    """Where one planned plane crosses one image, in pixel (row, col) coordinates."""

    key: str
    ends: np.ndarray  # (2, 2): (row, col) of both ends, pixel centres

    @property
    def label_point(self) -> np.ndarray:
        """(row, col) where the label goes: near the end closest to the top left."""
        first, second = sorted(self.ends, key=lambda rc: (rc[0] + rc[1]))
        return first + LABEL_FRACTION * (second - first)


def plan_lines(result: PlanningResult, image: ImageSlice) -> list[PlanLine]:
    """The lines of the result's OK planes that cross the image."""
    lines = []
    for planned in result.ok_planes:
        ends = plane_image_line(planned.plane, image)
        if ends is not None:
            lines.append(PlanLine(planned.key, ends))
    return lines


def crossed_images(localizer: Localizer, result: PlanningResult
                   ) -> Iterator[tuple[Dataset, int | None, ImageSlice, list[PlanLine]]]:
    """(dataset, frame number or None, image, lines) of every localizer image that an OK
    plane crosses, in instance order: what the overlays draw on."""
    for ds in localizer.datasets:
        for frame, image in localizer.image_slices(ds):
            lines = plan_lines(result, image)
            if lines:
                yield ds, frame, image, lines


def colour_of(key: str) -> tuple[int, int, int]:
    index = PLANE_KEYS.index(key) if key in PLANE_KEYS else sum(map(ord, key))
    return PALETTE[index % len(PALETTE)]


def display_window(image: ImageSlice, centre: float | None = None,
                   width: float | None = None) -> tuple[float, float]:
    """(low, high) pixel values mapped to black and white: the image's own window when it
    has one, else its 1st to 99.5th percentile."""
    if centre is not None and width is not None and width > 0:
        return centre - width / 2, centre + width / 2
    low, high = np.percentile(image.pixels, [1.0, 99.5])
    return float(low), float(max(high, low + 1e-3))


def render_rgb(image: ImageSlice, lines: list[PlanLine],
               window: tuple[float, float] | None = None) -> np.ndarray:
    """The image as 8-bit RGB (rows, cols, 3) with each line and its key burned in."""
    low, high = window or display_window(image)
    gray = np.clip((image.pixels - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)
    canvas = Image.fromarray(np.stack([gray] * 3, axis=-1), mode="RGB")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for line in lines:
        colour = colour_of(line.key)
        (r0, c0), (r1, c1) = line.ends
        draw.line([(c0, r0), (c1, r1)], fill=colour, width=1)
        row, col = line.label_point
        draw.text((col + 2, row + 2), line.key, fill=colour, font=font)
    return np.asarray(canvas)
