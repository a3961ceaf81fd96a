"""One 2D localizer image with its patient-space geometry, as the cascade sees it.

Both the DICOM loader and the simulator produce `ImageSlice`s, so the
networks get the same representation from real and simulated localizers.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from isp_node.pipeline.threads import thread_pool


@dataclass(frozen=True)
class ImageSlice:
    """Pixels plus DICOM geometry: pixel (r, c) lies at position + c*dc*row + r*dr*col."""

    pixels: np.ndarray  # (rows, cols) float32
    position: np.ndarray  # (3,) LPS mm of the centre of pixel (0, 0): ImagePositionPatient
    row: np.ndarray  # (3,) unit direction along a row (increasing column index)
    col: np.ndarray  # (3,) unit direction down a column (increasing row index)
    spacing: tuple[float, float]  # DICOM PixelSpacing: (between rows, between columns) mm
    thickness: float  # SliceThickness, mm
    uid: str = ""  # SOP Instance UID (or a simulator id)
    series_uid: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    normal: np.ndarray = field(init=False, repr=False, compare=False)  # row x col

    def __post_init__(self) -> None:
        for name in ("position", "row", "col"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float).reshape(3))
        object.__setattr__(self, "normal", np.cross(self.row, self.col))

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape

    @property
    def centre(self) -> np.ndarray:
        """Patient position of the image centre."""
        rows, cols = self.shape
        return self.pixel_to_patient(np.array([(rows - 1) / 2, (cols - 1) / 2]))

    @property
    def orientation(self) -> str:
        """'sagittal', 'coronal' or 'axial': the patient axis the normal is closest to."""
        return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(self.normal)))]

    def pixel_to_patient(self, rc: np.ndarray) -> np.ndarray:
        """Patient coordinates (..., 3) of pixel coordinates (..., 2) given as (row, col)."""
        steps = np.stack([self.spacing[0] * self.col, self.spacing[1] * self.row])  # per row, per column
        return np.asarray(rc, dtype=float) @ steps + self.position

    def patient_to_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) pixel coordinates of points (..., 2) and their signed distance (...) to the plane."""
        d = np.asarray(points, dtype=float) - self.position
        rc = np.stack([d @ self.col / self.spacing[0], d @ self.row / self.spacing[1]], axis=-1)
        return rc, d @ self.normal

    def antialiased(self, step_mm: float) -> np.ndarray:
        """The pixels (float32) smoothed for sampling every `step_mm` (`antialiased`)."""
        return antialiased(self.pixels, self.spacing, step_mm)

    @property
    def frame(self) -> np.ndarray:
        """The image's frame in the patient (11,): the position of pixel (0, 0), the row and
        column directions, and the field of view's width and height between the outer pixel
        centres (mm). What `cascade.brain.image_brain_mm2` needs, in a form shards can store."""
        rows, cols = self.shape
        return np.concatenate([self.position, self.row, self.col,
                               [(cols - 1) * self.spacing[1], (rows - 1) * self.spacing[0]]])

    def pixel_grid(self) -> np.ndarray:
        """Patient coordinates (rows, cols, 3) of every pixel centre."""
        rows, cols = self.shape
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        return self.pixel_to_patient(np.stack([r, c], axis=-1))


@dataclass(frozen=True)
class PixelStack:
    """The pixels of parallel slices of one matrix and pixel size, as one array prepared for
    sampling every `step_mm`: blocks of pixels averaged where they are much finer than the
    step needs (`binning_factor`), so a 512 matrix costs a network grid what a 256 one does."""

    pixels: np.ndarray  # (N, rows, cols) float32
    spacing: tuple[float, float]  # of the (binned) pixels, as PixelSpacing
    offset: np.ndarray  # (3,) LPS from each slice's position to the centre of its pixel (0, 0)

    @classmethod
    def of(cls, slices: list[ImageSlice], step_mm: float) -> "PixelStack":
        first = slices[0]
        if any(s.shape != first.shape for s in slices):
            raise ValueError("a pixel stack needs slices of one matrix (and pixel size)")
        kr, kc = (binning_factor(n, sp, step_mm) for n, sp in zip(first.shape, first.spacing))
        if (kr, kc) == (1, 1):
            pixels = np.stack([s.pixels for s in slices]).astype(np.float32, copy=False)
        else:  # image by image: stacking the fine pixels first costs more than the binning
            pixels = np.empty((len(slices), first.shape[0] // kr, first.shape[1] // kc), np.float32)
            for binned, s in zip(pixels, slices):
                fine = s.pixels.astype(np.float32, copy=False)
                binned[:] = sum(fine[i::kr, j::kc] for i in range(kr) for j in range(kc)) / np.float32(kr * kc)
        offset = first.pixel_to_patient(np.array([(kr - 1) / 2, (kc - 1) / 2])) - first.position
        return cls(pixels, (first.spacing[0] * kr, first.spacing[1] * kc), offset)

    def antialiased(self, step_mm: float) -> np.ndarray:
        """The stack's pixels smoothed for sampling every `step_mm` (`antialiased`)."""
        return antialiased(self.pixels, self.spacing, step_mm)


def antialiased(pixels: np.ndarray, spacing: tuple[float, float], step_mm: float) -> np.ndarray:
    """Images (..., rows, cols) of pixel size `spacing` smoothed (float32) for sampling every
    `step_mm`, so fine pixels do not alias when a coarser grid samples them; a stack of
    images is smoothed in two halves side by side (`thread_pool`)."""
    sigma = [0.0] * (pixels.ndim - 2) + [antialias_sigma(step_mm, sp) for sp in spacing]
    pixels = pixels.astype(np.float32, copy=False)
    if max(sigma) == 0:
        return pixels
    if pixels.ndim == 3 and len(pixels) > 1:
        halves = np.array_split(pixels, 2)
        return np.concatenate(list(thread_pool().map(lambda h: ndimage.gaussian_filter(h, sigma), halves)))
    return ndimage.gaussian_filter(pixels, sigma)


MIN_SIGMA = 0.125  # narrower, scipy's Gaussian kernel (4 sigma each side) is one tap: the identity


def antialias_sigma(step_mm: float, spacing_mm: float) -> float:
    """Gaussian sigma (pixels) that keeps pixels of `spacing_mm` from aliasing when
    sampled every `step_mm`; 0 when the sampling is as fine as the pixels."""
    sigma = 0.4 * step_mm / spacing_mm - 0.4
    return sigma if sigma >= MIN_SIGMA else 0.0


BINNED_PIXEL_FRACTION = 1 / 3  # of the sampling step: finer pixels are averaged in blocks


def binning_factor(pixels: int, spacing_mm: float, step_mm: float) -> int:
    """How many pixels of `spacing_mm` along an axis of `pixels` to average into one for
    sampling every `step_mm`: the largest divisor of `pixels` whose block stays within
    BINNED_PIXEL_FRACTION of the step (1: none). The antialiasing Gaussian of the binned
    pixels, added to the block, blurs about as much as that of the fine ones alone."""
    largest = int(step_mm * BINNED_PIXEL_FRACTION / spacing_mm)
    return next(k for k in range(max(largest, 1), 0, -1) if pixels % k == 0)
