"""Fields of view and slabs sized to the patient's brain.

The catalogue's prescriptions (`catalogue.PRESCRIPTIONS`) are an adult's defaults. The
planes that image the whole brain (`BRAIN_PLANES`) are resized to the brain Coverage-Net
found: the slab, centred on the plane as the report draws it, reaches the brain's farthest
point along the normal plus an allowance for the map's error, in whole slices of the
prescribed spacing; the field of view, centred on the plane's centre too, grows where the
brain's farthest point along the plane's row or column plus the scalp and the allowance
needs more than the prescription, and never shrinks below it: the map shows the brain, not
the face and ears that an adult's field of view holds against wrap-around. The planes of one
structure (optic nerves, pituitary, inner ears, hippocampi, circle of Willis) keep their
prescription: their size is the structure's, not the brain's. So does OM: its centre lies
at the skull base, and a slab centred there that covered the brain would be twice the
brain's height.
"""

from dataclasses import replace

import numpy as np

from isp_node.geometry.planes import Plane

BRAIN_PLANES = ("MSP", "ACPC")
SCALP_MM = 15.0  # skull and scalp beyond the brain, in the image: no wrap-around of the head
# beyond the map's brain voxels: the least allowance that cut no true brain on the training
# heads' tuning localizers (docs/brain_margins.py; Coverage-Net's card, "Planes sized to the brain")
EDGE_ALLOWANCE_MM = 5.0
FOV_STEP_MM = 10.0  # fields of view rounded up to whole centimetres, as consoles offer them


def sized_to_brain(plane: Plane, brain_lps: np.ndarray, scalp_mm: float = SCALP_MM,
                   allowance_mm: float = EDGE_ALLOWANCE_MM) -> Plane:
    """`plane` with its slab covering the points `brain_lps` (n, 3; LPS mm) about its centre
    with `allowance_mm` beyond the farthest on each side (the slice spacing kept), and its
    field of view widened where they need `scalp_mm + allowance_mm` beyond the farthest
    point on each side, never narrowed. Without points the plane is returned as
    prescribed."""
    points = np.asarray(brain_lps, dtype=float).reshape(-1, 3)
    if not len(points):
        return plane
    reach = np.abs((points - plane.centre) @ np.stack([plane.row, plane.col, plane.normal]).T
                   ).max(axis=0)
    fov = tuple(max(float(FOV_STEP_MM * np.ceil(2 * (r + scalp_mm + allowance_mm) / FOV_STEP_MM)),
                    prescribed) for r, prescribed in zip(reach[:2], plane.fov_mm))
    n_slices = int(np.ceil(2 * (reach[2] + allowance_mm) / plane.spacing_mm))
    return replace(plane, fov_mm=fov, n_slices=n_slices, slab_mm=n_slices * plane.spacing_mm)
