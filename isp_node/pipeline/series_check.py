"""The default planner until the cascade is installed: checks that a localizer
series can be read and carries patient-space geometry, and says what it found."""

import pydicom

from isp_node.pipeline.planner import PlanRequest, Planner

GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


def _orientation_name(iop: list[float]) -> str:
    row, col = iop[:3], iop[3:]
    normal = [row[1] * col[2] - row[2] * col[1],
              row[2] * col[0] - row[0] * col[2],
              row[0] * col[1] - row[1] * col[0]]
    axis = max(range(3), key=lambda i: abs(normal[i]))
    return ("sagittal", "coronal", "axial")[axis]


def check_series(request: PlanRequest) -> dict:
    """Read every image, decode its pixels and summarise its geometry."""
    orientations: dict[str, int] = {}
    problems: list[str] = []
    for path in request.files:
        ds = pydicom.dcmread(path)
        missing = [k for k in GEOMETRY if k not in ds]
        if missing:
            problems.append(f"{ds.SOPInstanceUID}: no {', '.join(missing)}")
            continue
        if "PixelData" in ds:
            ds.pixel_array  # noqa: B018 - decoding proves the pixel data is readable
        name = _orientation_name([float(v) for v in ds.ImageOrientationPatient])
        orientations[name] = orientations.get(name, 0) + 1
    usable = not problems and sum(orientations.values()) > 1
    return {
        "planner": "series-check",
        "image_count": len(request.files),
        "orientations": orientations,
        "usable": usable,
        "planes": [],
        "message": "; ".join(problems) if problems else
        "geometry readable; no planning models installed",
    }


def make_planner() -> Planner:
    return check_series
