"""The plane catalogue of the design contract (section 4), computed from anatomical landmarks.

Landmarks are LPS millimetre points keyed ``AFID:<label>`` for the AFIDs
fiducials and by the names below for the project's own landmarks.

Orientation conventions. Every plane is sagittal-like, coronal-like or
axial-like; its normal points to the patient's Left, Posterior or Superior.
"Patient" directions come from the head itself, not from the scanner: Left is
the mid-sagittal normal (signed by the left-right AFID pairs), Posterior is
the AC->PC direction made orthogonal to it, Superior = Left x Posterior. So a
rotated head rotates every plane with it. Rows and columns follow the usual
scanner orientations, projected onto each oblique plane:

==========  ==========  ==============
kind        row         column
==========  ==========  ==============
sagittal    Posterior   Inferior
coronal     Left        Inferior
axial       Left        Posterior
==========  ==========  ==============

(so the displayed image has the patient's right on the left for axial and
coronal, anterior on the left for sagittal). The normal is along
``row x col`` for axial and coronal planes and along ``col x row`` for
sagittal planes.

Default prescriptions, as a radiographer would set them on a 1.5/3 T scanner
for an adult head. ``slab_mm`` = slices x spacing; the stack is centred on the
plane centre.

===========  ===========  ======  =======  ====  ================================
key          FOV row x    slices  spacing  slab  sequence it stands for
             col (mm)             (mm)     (mm)
===========  ===========  ======  =======  ====  ================================
MSP          240 x 240    25      5.0      125   sagittal T1/T2 whole brain
ACPC         200 x 230    30      5.0      150   axial whole brain
OM           200 x 230    30      5.0      150   axial whole brain (OM baseline)
OPTIC_AX     180 x 180    14      3.0      42    thin axial along optic nerves
OPTIC_SAG_*  160 x 160    11      3.0      33    oblique sagittal per optic nerve
ORBIT_COR    180 x 180    20      3.0      60    coronal STIR/T1 orbits
PIT_SAG      160 x 160    11      3.0      33    sagittal pituitary
PIT_COR      160 x 160    13      3.0      39    coronal pituitary (dynamic)
IAC_AX       180 x 180    56      0.7      39.2  3D heavily T2 (CISS/SPACE) slab
IAC_COR      180 x 180    20      2.0      40    coronal T2/T1 IAC
HIPPO_AX     220 x 220    25      3.0      75    oblique axial temporal lobes
HIPPO_COR    200 x 200    30      3.0      90    oblique coronal hippocampus
COW          200 x 200    140     0.6      84    3D TOF angiography slab
===========  ===========  ======  =======  ====  ================================

Centres the contract leaves open: OPTIC_AX is centred halfway between the
midpoint of the globe posterior poles and the chiasm (the middle of the optic
pathway it images); OPTIC_SAG_L/R halfway between the globe posterior pole and
the optic canal of that side.
"""

from dataclasses import dataclass

import numpy as np

from isp_node.geometry.planes import Plane, orthogonal_unit, unit

AFID = "AFID:"
MIDLINE_AFIDS = tuple(AFID + label for label in (
    "AC", "PC", "infracollicular sulcus", "PMJ", "superior interpeduncular fossa", "culmen",
    "intermammillary sulcus", "pineal gland", "genu of CC", "splenium of CC"))
AC, PC = AFID + "AC", AFID + "PC"
AM_TEMPORAL_HORNS = tuple(AFID + f"{side} {part} AM temporal horn"
                          for side in "LR" for part in ("superior", "inferior"))

L_LATERAL_CANTHUS, R_LATERAL_CANTHUS = "L_LATERAL_CANTHUS", "R_LATERAL_CANTHUS"
L_EAM, R_EAM = "L_EAM", "R_EAM"
L_GLOBE_POSTERIOR_POLE, R_GLOBE_POSTERIOR_POLE = "L_GLOBE_POSTERIOR_POLE", "R_GLOBE_POSTERIOR_POLE"
L_OPTIC_CANAL, R_OPTIC_CANAL = "L_OPTIC_CANAL", "R_OPTIC_CANAL"
OPTIC_CHIASM = "OPTIC_CHIASM"
PITUITARY = "PITUITARY"
L_IAC, R_IAC = "L_IAC", "R_IAC"
BASILAR_TIP = "BASILAR_TIP"
ANNOTATED_LANDMARKS = (
    L_LATERAL_CANTHUS, R_LATERAL_CANTHUS, L_EAM, R_EAM, L_GLOBE_POSTERIOR_POLE, R_GLOBE_POSTERIOR_POLE,
    L_OPTIC_CANAL, R_OPTIC_CANAL, OPTIC_CHIASM, PITUITARY, L_IAC, R_IAC, BASILAR_TIP)

SAGITTAL, CORONAL, AXIAL = "sagittal", "coronal", "axial"


@dataclass(frozen=True)
class Prescription:
    """Default coverage of one catalogue plane."""

    kind: str
    fov_mm: tuple[float, float]
    n_slices: int
    spacing_mm: float

    @property
    def slab_mm(self) -> float:
        return self.n_slices * self.spacing_mm


PRESCRIPTIONS = {
    "MSP": Prescription(SAGITTAL, (240.0, 240.0), 25, 5.0),
    "ACPC": Prescription(AXIAL, (200.0, 230.0), 30, 5.0),
    "OM": Prescription(AXIAL, (200.0, 230.0), 30, 5.0),
    "OPTIC_AX": Prescription(AXIAL, (180.0, 180.0), 14, 3.0),
    "OPTIC_SAG_L": Prescription(SAGITTAL, (160.0, 160.0), 11, 3.0),
    "OPTIC_SAG_R": Prescription(SAGITTAL, (160.0, 160.0), 11, 3.0),
    "ORBIT_COR": Prescription(CORONAL, (180.0, 180.0), 20, 3.0),
    "PIT_SAG": Prescription(SAGITTAL, (160.0, 160.0), 11, 3.0),
    "PIT_COR": Prescription(CORONAL, (160.0, 160.0), 13, 3.0),
    "IAC_AX": Prescription(AXIAL, (180.0, 180.0), 56, 0.7),
    "IAC_COR": Prescription(CORONAL, (180.0, 180.0), 20, 2.0),
    "HIPPO_AX": Prescription(AXIAL, (220.0, 220.0), 25, 3.0),
    "HIPPO_COR": Prescription(CORONAL, (200.0, 200.0), 30, 3.0),
    "COW": Prescription(AXIAL, (200.0, 200.0), 140, 0.6),
}
PLANE_KEYS = tuple(PRESCRIPTIONS)
# What each plane is, in words (DESIGN section 4): the meaning of its code in reports.
PLANE_NAMES = {
    "MSP": "mid-sagittal plane",
    "ACPC": "AC-PC axial",
    "OM": "orbitomeatal axial",
    "OPTIC_AX": "optic nerve oblique axial",
    "OPTIC_SAG_L": "left optic nerve oblique sagittal",
    "OPTIC_SAG_R": "right optic nerve oblique sagittal",
    "ORBIT_COR": "orbital coronal",
    "PIT_SAG": "pituitary sagittal",
    "PIT_COR": "pituitary coronal",
    "IAC_AX": "internal auditory canals axial",
    "IAC_COR": "internal auditory canals coronal",
    "HIPPO_AX": "hippocampus oblique axial",
    "HIPPO_COR": "hippocampus oblique coronal",
    "COW": "circle of Willis slab",
}


@dataclass(frozen=True)
class HeadFrame:
    """The patient's own Left, Posterior and Superior directions, from the landmarks."""

    left: np.ndarray
    posterior: np.ndarray
    superior: np.ndarray

    def reference_axes(self, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(normal direction, row, column) a scanner uses for a plane of ``kind``."""
        inferior = -self.superior
        return {
            SAGITTAL: (self.left, self.posterior, inferior),
            CORONAL: (self.posterior, self.left, inferior),
            AXIAL: (self.superior, self.left, self.posterior),
        }[kind]


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane (centroid, unit normal of arbitrary sign) through >= 3 points."""
    points = np.asarray(points, dtype=float)
    if len(points) < 3:
        raise ValueError("a plane needs at least three points")
    centroid = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - centroid)
    if singular[1] < 1e-6:
        raise ValueError("points are collinear: no unique plane")
    return centroid, vt[2]


def left_sign_reference(landmarks: dict[str, np.ndarray]) -> np.ndarray:
    """Mean left-minus-right vector over the paired AFIDs: says which way the patient's Left is."""
    pairs = [(landmarks[k], landmarks[AFID + "R " + k[len(AFID) + 2:]])
             for k in landmarks if k.startswith(AFID + "L ") and AFID + "R " + k[len(AFID) + 2:] in landmarks]
    if not pairs:
        raise ValueError("no left/right AFID pairs: cannot tell the patient's left")
    return np.mean([left - right for left, right in pairs], axis=0)


def oriented(normal: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``normal`` flipped if needed so it points the way ``reference`` does."""
    return -normal if normal @ reference < 0 else normal


def head_frame(landmarks: dict[str, np.ndarray]) -> HeadFrame:
    """Left = MSP normal, Posterior = AC->PC orthogonalised, Superior = Left x Posterior."""
    _, normal = fit_plane(np.stack([landmarks[k] for k in MIDLINE_AFIDS]))
    left = oriented(normal, left_sign_reference(landmarks))
    ac_pc = landmarks[PC] - landmarks[AC]
    posterior = orthogonal_unit(ac_pc, left)
    return HeadFrame(left, posterior, np.cross(left, posterior))


def make_plane(key: str, centre: np.ndarray, normal: np.ndarray, frame: HeadFrame) -> Plane:
    """A catalogue plane: orient the normal, project the scanner's row/column, add the prescription."""
    rx = PRESCRIPTIONS[key]
    reference_normal, reference_row, reference_col = frame.reference_axes(rx.kind)
    normal = oriented(unit(normal), reference_normal)
    row = orthogonal_unit(reference_row, normal)
    col = oriented(np.cross(normal, row), reference_col)
    return Plane(centre=np.asarray(centre, dtype=float), normal=normal, row=row, col=col,
                 fov_mm=rx.fov_mm, slab_mm=rx.slab_mm, n_slices=rx.n_slices, spacing_mm=rx.spacing_mm)


# How section 4 ties a plane's normal to the head frame: it is one of the frame's axes,
# or it lies perpendicular to Left (the plane contains the MSP normal); keys not listed
# are oriented by their own landmarks alone.
FRAME_NORMALS = {"MSP": "left", "ACPC": "superior", "PIT_SAG": "left", "PIT_COR": "posterior",
                 "COW": "superior", "ORBIT_COR": "perpendicular_to_left",
                 "IAC_COR": "perpendicular_to_left", "HIPPO_AX": "perpendicular_to_left",
                 "HIPPO_COR": "perpendicular_to_left"}


def frame_constrained_normal(key: str, normal: np.ndarray, frame: HeadFrame) -> np.ndarray:
    """`normal` of plane `key` made to obey `FRAME_NORMALS` in `frame` (unit; unchanged where
    the catalogue leaves it free): an estimate of the plane then carries no error that the
    frame already rules out."""
    rule = FRAME_NORMALS.get(key)
    normal = unit(normal)
    if rule == "perpendicular_to_left":
        return orthogonal_unit(normal, frame.left)
    if rule is not None:
        return oriented(getattr(frame, rule), normal)
    return normal


def hippocampal_axis(hippo_ax_normal: np.ndarray, frame: HeadFrame) -> np.ndarray:
    """The hippocampal long axis (HIPPO_COR's normal) of a HIPPO_AX plane: that plane contains
    the axis and Left, so the axis is its normal turned 90 degrees about Left (pointing
    Posterior, as a coronal plane's normal does)."""
    return oriented(unit(np.cross(frame.left, hippo_ax_normal)), frame.posterior)


def iac_normals(superior: np.ndarray, iac_line: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IAC_AX's and IAC_COR's normals as section 4 defines them: the ACPC normal `superior`
    made orthogonal to the line through both IACs, and the normal perpendicular to that and
    to the MSP normal `left` (pointing Posterior). The two planes' one angle of their own is
    the line's roll; their pitch is the AC-PC plane's."""
    line = unit(iac_line)
    axial = orthogonal_unit(superior, line)
    return axial, unit(np.cross(oriented(axial, superior), left))


def iac_line(iac_ax_normal: np.ndarray, left: np.ndarray) -> np.ndarray:
    """The line through both IACs that an IAC_AX plane holds, as far as its normal tells: of
    the plane's directions, the one nearest the MSP normal `left`."""
    normal = unit(iac_ax_normal)
    return orthogonal_unit(left, normal)


def _mid(*points: np.ndarray) -> np.ndarray:
    return np.mean(np.stack(points), axis=0)


def plane_catalogue(landmarks: dict[str, np.ndarray]) -> dict[str, Plane]:
    """Every plane of DESIGN.md section 4, computed from LPS landmarks."""
    lm = {k: np.asarray(v, dtype=float) for k, v in landmarks.items()}
    frame = head_frame(lm)
    left, superior = frame.left, frame.superior
    planes = {}

    ac_pc_mid = _mid(lm[AC], lm[PC])
    msp_point, _ = fit_plane(np.stack([lm[k] for k in MIDLINE_AFIDS]))
    planes["MSP"] = make_plane("MSP", ac_pc_mid - ((ac_pc_mid - msp_point) @ left) * left, left, frame)
    planes["ACPC"] = make_plane("ACPC", ac_pc_mid, superior, frame)

    om_points = np.stack([lm[k] for k in (L_LATERAL_CANTHUS, R_LATERAL_CANTHUS, L_EAM, R_EAM)])
    om_centre, om_normal = fit_plane(om_points)
    planes["OM"] = make_plane("OM", om_centre, om_normal, frame)

    poles = {"L": lm[L_GLOBE_POSTERIOR_POLE], "R": lm[R_GLOBE_POSTERIOR_POLE]}
    canals = {"L": lm[L_OPTIC_CANAL], "R": lm[R_OPTIC_CANAL]}
    chiasm = lm[OPTIC_CHIASM]
    optic_normal = oriented(unit(np.cross(poles["R"] - poles["L"], chiasm - poles["L"])), superior)
    pole_mid = _mid(poles["L"], poles["R"])
    planes["OPTIC_AX"] = make_plane("OPTIC_AX", _mid(pole_mid, chiasm), optic_normal, frame)
    for side in "LR":
        nerve = canals[side] - poles[side]
        planes[f"OPTIC_SAG_{side}"] = make_plane(
            f"OPTIC_SAG_{side}", _mid(poles[side], canals[side]), np.cross(nerve, optic_normal), frame)
    planes["ORBIT_COR"] = make_plane("ORBIT_COR", pole_mid, np.cross(optic_normal, left), frame)

    planes["PIT_SAG"] = make_plane("PIT_SAG", lm[PITUITARY], left, frame)
    planes["PIT_COR"] = make_plane("PIT_COR", lm[PITUITARY], np.cross(superior, left), frame)

    iac_ax_normal, iac_cor_normal = iac_normals(superior, lm[R_IAC] - lm[L_IAC], left)
    iac_mid = _mid(lm[L_IAC], lm[R_IAC])
    planes["IAC_AX"] = make_plane("IAC_AX", iac_mid, iac_ax_normal, frame)
    planes["IAC_COR"] = make_plane("IAC_COR", iac_mid, iac_cor_normal, frame)

    long_axis = _mid(*(lm[AFID + f"{s} indusium griseum origin"] - lm[AFID + f"{s} inferior AM temporal horn"]
                       for s in "LR"))
    long_axis = orthogonal_unit(long_axis, left)
    hippo_centre = _mid(*(lm[k] for k in AM_TEMPORAL_HORNS))
    planes["HIPPO_COR"] = make_plane("HIPPO_COR", hippo_centre, long_axis, frame)
    planes["HIPPO_AX"] = make_plane("HIPPO_AX", hippo_centre, np.cross(long_axis, left), frame)

    planes["COW"] = make_plane("COW", lm[BASILAR_TIP], superior, frame)
    return {key: planes[key] for key in PLANE_KEYS}
