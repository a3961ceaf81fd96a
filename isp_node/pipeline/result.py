"""The planning result the result objects are made from, typed and validated.

The worker's planner returns a JSON dict (see `isp_node.pipeline.planner`);
`PlanningResult.from_json` checks it and turns it into planes, statuses and the
localizer verdict, so that a malformed result is refused with a reason before
any DICOM object is built from it.
"""

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from isp_node.geometry.planes import Plane, orthonormal, plane_json

# Plane keys become DICOM code values (VR SH): at most 16 characters.
KEY_PATTERN = re.compile(r"[A-Z0-9_]{1,16}")
IMAGE_CLASSES = ("anatomy", "artifact", "irrelevant")
# Directions a planner rounded for JSON are re-orthonormalised when this close.
ROUNDED_TOLERANCE = 1e-3


class PlaneStatus(str, Enum):
    """How far a planned plane can be trusted."""

    OK = "OK"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    FAILED = "FAILED"


class ResultError(ValueError):
    """The planner's result cannot be encoded; the message names the offending entry."""


@dataclass(frozen=True)
class PlannedPlane:
    """One catalogue plane as planned: geometry, confidence (0..1) and status."""

    key: str
    plane: Plane
    confidence: float
    status: PlaneStatus

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not KEY_PATTERN.fullmatch(self.key):
            raise ResultError(f"plane key {self.key!r} is not 1-16 of A-Z, 0-9, _")
        if not isinstance(self.plane, Plane):
            raise ResultError(f"plane {self.key}: expected a Plane, got {type(self.plane).__name__}")
        confidence = float(self.confidence)
        if not 0.0 <= confidence <= 1.0:
            raise ResultError(f"plane {self.key}: confidence {self.confidence!r} is not in 0..1")
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "status", PlaneStatus(self.status))
        p = self.plane
        vectors = np.concatenate([p.centre, p.normal, p.row, p.col])
        numbers = [*p.fov_mm, p.slab_mm, p.spacing_mm]
        if not np.all(np.isfinite(vectors)) or not all(math.isfinite(v) and v > 0 for v in numbers):
            raise ResultError(f"plane {self.key}: coordinates must be finite, "
                              "field of view, slab and spacing positive")
        if p.n_slices < 1:
            raise ResultError(f"plane {self.key}: n_slices must be at least 1")

    def to_json(self) -> dict:
        """The planner's JSON entry of this plane."""
        return {"key": self.key, **plane_json(self.plane), "confidence": self.confidence,
                "status": self.status.value}

    @classmethod
    def from_json(cls, entry: Any) -> "PlannedPlane":
        """Parse one entry of the planner's ``planes`` list."""
        if not isinstance(entry, dict):
            raise ResultError(f"plane entry must be an object, got {entry!r:.60}")
        key = entry.get("key")
        try:
            centre = _vector(entry["centre"])
            row, col, normal = _orthonormal(_vector(entry["row"]), _vector(entry["col"]),
                                            _vector(entry["normal"]))
            fov = tuple(float(v) for v in entry["fov_mm"])
            if len(fov) != 2:
                raise ValueError("fov_mm needs two values")
            n_slices = entry["n_slices"]
            if isinstance(n_slices, bool) or int(n_slices) != n_slices:
                raise ValueError(f"n_slices {n_slices!r} is not an integer")
            plane = Plane(centre=centre, normal=normal, row=row, col=col, fov_mm=fov,
                          slab_mm=float(entry["slab_mm"]), n_slices=int(n_slices),
                          spacing_mm=float(entry["spacing_mm"]))
            status = PlaneStatus(entry["status"])
            confidence = float(entry["confidence"])
        except KeyError as exc:
            raise ResultError(f"plane {key}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ResultError):
                raise
            raise ResultError(f"plane {key}: {exc}") from None
        return cls(key, plane, confidence, status)


@dataclass(frozen=True)
class ImageVerdict:
    """What stage 1 made of one localizer image."""

    uid: str  # SOP Instance UID, with "#<frame>" for a frame of a multi-frame image
    image_class: str  # anatomy / artifact / irrelevant
    orientation: str = ""

    def __post_init__(self) -> None:
        if self.image_class not in IMAGE_CLASSES:
            raise ResultError(f"image {self.uid}: class {self.image_class!r} is not one of "
                              f"{', '.join(IMAGE_CLASSES)}")

    @property
    def sop_instance_uid(self) -> str:
        return self.uid.split("#")[0]


@dataclass(frozen=True)
class PlanningResult:
    """Everything the result objects say about one localizer series."""

    usable: bool
    message: str
    planes: tuple[PlannedPlane, ...] = ()
    images: tuple[ImageVerdict, ...] = ()
    models: dict[str, str] = field(default_factory=dict)  # network name -> version

    def __post_init__(self) -> None:
        keys = [p.key for p in self.planes]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ResultError(f"plane keys listed twice: {', '.join(duplicated)}")
        if not self.usable and any(p.status is not PlaneStatus.FAILED for p in self.planes):
            raise ResultError("an unusable localizer cannot have planes that are not FAILED")

    @property
    def ok_planes(self) -> tuple[PlannedPlane, ...]:
        """The planes overlays may draw: those planned with status OK."""
        return tuple(p for p in self.planes if p.status is PlaneStatus.OK)

    def class_of(self) -> dict[str, str]:
        """Image class by image uid."""
        return {image.uid: image.image_class for image in self.images}

    def to_json(self) -> dict:
        """The planner's JSON dict for this result (keys as `from_json` reads them)."""
        return {
            "usable": self.usable,
            "message": self.message,
            "images": [{"uid": i.uid, "orientation": i.orientation, "class": i.image_class}
                       for i in self.images],
            "planes": [p.to_json() for p in self.planes],
            "models": dict(self.models),
        }

    @classmethod
    def from_json(cls, result: Any) -> "PlanningResult":
        """Parse a planner's result; raise ResultError naming what is wrong."""
        if not isinstance(result, dict):
            raise ResultError(f"planner result must be an object, got {type(result).__name__}")
        usable = result.get("usable")
        if not isinstance(usable, bool):
            raise ResultError(f"'usable' must be true or false, got {usable!r}")
        planes, images, models = (result.get(k) for k in ("planes", "images", "models"))
        planes, images = planes if planes is not None else [], images if images is not None else []
        models = models if models is not None else {}
        if not isinstance(planes, list) or not isinstance(images, list) or not isinstance(models, dict):
            raise ResultError("'planes' and 'images' must be lists, 'models' an object")
        verdicts = []
        for image in images:
            if not isinstance(image, dict) or not isinstance(image.get("uid"), str):
                raise ResultError(f"image entry without a uid: {image!r:.60}")
            verdicts.append(ImageVerdict(image["uid"], str(image.get("class", "")),
                                         str(image.get("orientation", ""))))
        return cls(usable=usable, message=str(result.get("message", "")),
                   planes=tuple(PlannedPlane.from_json(p) for p in planes),
                   images=tuple(verdicts),
                   models={str(k): str(v) for k, v in models.items()})


def _vector(value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"expected three finite numbers, got {value!r:.60}")
    return array


def _orthonormal(row: np.ndarray, col: np.ndarray,
                 normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and normal made exactly orthonormal when JSON rounding bent them
    slightly; anything further off is refused."""
    basis = np.stack([row, col, normal])
    if not orthonormal(basis, ROUNDED_TOLERANCE):
        raise ValueError("row, col and normal must be orthonormal unit vectors")
    if orthonormal(basis):
        return row, col, normal
    row = row / np.linalg.norm(row)
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return row, col, np.sign(normal @ np.cross(row, col)) * np.cross(row, col)
