"""Random, smooth, invertible deformations of a template head: other people's anatomy.

A ``Deformation`` maps the deformed ("subject") head onto the template, both in
LPS mm: ``to_template(x) = M @ x + b + D(x)``, where ``M``, ``b`` are a global
affine (head size and shape) and ``D`` is a displacement field (template-frame
mm) on a regular 4 mm grid over the subject head, interpolated trilinearly.
The simulator samples the template image at ``to_template`` of the points it
images and never warps a volume; landmarks go the other way with
``to_subject`` (Newton's method on the same interpolated map), so image and
ground truth follow one map.

``random_deformation`` draws, at ``strength=1`` (all amplitudes are in
``Amplitudes``):

1. a global affine about the brain centre: per-axis scale exp(N(0, 10 %))
   clipped to +-25 %, shear terms N(0, 2 %);
2. a whole-head field, Gaussian-smoothed white noise (correlation length
   50 mm), 1.5 mm RMS per component: outline and interior move alike;
3. brain-interior changes the outline does not show: forward displacements of
   template tissue, weighted by ``interior_weight`` of the depth inside the
   intracranial space (brain plus basal cisterns, ``masks``): 0 there at the
   skull, scalp, orbits, ears, sella and internal auditory canals, 1 deeper
   than 17 mm:
   - deep structures (commissures, thalami, basal ganglia, midbrain): a local
     affine in a Gaussian envelope (sigma 25 mm) centred 6 mm above the AC-PC
     midpoint; shift N(0, (1, 2, 3)) mm left / posterior / superior
     ("commissure height"), rotation N(0, (0.6, 3, 0.6)) degrees roll / pitch /
     yaw, AC-PC length N(0, 4 %);
   - the whole brain turned against the skull, N(0, (0.6, 1.5, 0.6)) degrees
     roll / pitch / yaw about its centroid;
   - lateral ventricles dilated by a ~ N(0.8, 1.3) mm clipped to -1..+4 mm,
     plus N(0, 0.4) mm per side (``masks.ventricle_push``);
   - (only where ``Amplitudes.brain_swell`` is set: training data, opt-in) the whole
     brain scaled against the skull about its centre by a ~ N(0, brain_swell), clipped
     to +-brain_swell_limit, fully inside the brain and fading to nothing over the
     first BRAIN_SWELL_REACH_MM outside it: a brain that fills its skull, or one with
     wide CSF around it, as brains differ in how much of the skull they fill;
   - per side, the hippocampal head and amygdala (Gaussian, sigma 12 mm, at the
     AM temporal horn AFIDs) shifted N(0, (0.8, 1.5, 2)) mm common to both
     sides plus N(0, (0.8, 1.2, 1.5)) mm per side; the hippocampus rotated in
     pitch and yaw about the middle of its long axis (AM temporal horns to
     indusium griseum origin; envelope sigma 28 mm along, 12 mm across) by
     N(0, 5) degrees common (yaw mirrored) plus N(0, 3) per side; the temporal
     lobe (sigma 18 mm at the AL temporal horn AFID) shifted N(0, 1.5) mm.

The interior displacements are summed on a 4 mm template-space grid and used
as a stationary velocity field: its flow (scaling and squaring) is smooth and
invertible even where a horn of the ventricles widens several-fold, and the
backward field is the flow of the negated velocity. The Jacobian determinant
of the final map is checked on the grid (every one-sided difference
combination at each node, i.e. at each corner of every trilinear cell); if it
is below ``MIN_DET`` or above ``MAX_DET`` (relative to the affine's), the
interior part is scaled by 0.7 and checked again, so the outline never
changes. Lesions (``lesions``) add their mass effect by composition.
"""

from dataclasses import dataclass, field as dataclass_field, replace

import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from isp_node.geometry.catalogue import AC, PC, head_frame
from isp_node.pipeline.interpolation import corner, sample_trilinear, trilinear_at, upsample_linear
from isp_node.pipeline.volume import Grid
from isp_node.simulation.anatomy import AFID_PREFIX, Head
from isp_node.simulation.lesions import Lesion
from isp_node.simulation.masks import TemplateMaps, cached_for, template_maps

GRID_MM = 4.0
GRID_PAD_MM = 12.0
MIN_DET = 0.2
MAX_DET = 5.0
MAX_SHRINK_STEPS = 8
SQUARING_STEPS = 5
INVERSE_TOLERANCE_MM = 1e-4
INVERSE_MAX_ITERATIONS = 60
LESION_WEIGHT_WIDTH_MM = 8.0  # the mass effect fades over the outer 0.5-8.5 mm of the intracranial space
BRAIN_SWELL_REACH_MM = 6.0  # a brain scaled against the skull moves the CSF and bone within this of it


@dataclass(frozen=True)
class Amplitudes:
    """Standard deviations of the random components at ``strength=1`` (mm, degrees, fractions)."""

    # per axis: adult heads vary by about +-10%; drawn wider so that a network reads the
    # brain's extent from the image, not from the template's proportions (the pydeface
    # mean head is 0.90 / 0.93 / 0.81 of MNI along L-R / A-P / S-I)
    scale: float = 0.10
    scale_limit: float = 0.25
    shear: float = 0.02
    smooth_mm: float = 1.5
    smooth_length_mm: float = 50.0
    deep_shift_mm: tuple[float, float, float] = (1.0, 2.0, 3.0)  # left, posterior, superior
    deep_rotation_deg: tuple[float, float, float] = (0.6, 3.0, 0.6)  # roll, pitch, yaw
    deep_length: float = 0.04
    deep_sigma_mm: float = 25.0
    brain_rotation_deg: tuple[float, float, float] = (0.6, 1.5, 0.6)
    ventricle_mean_mm: float = 0.8
    ventricle_mm: float = 1.3
    ventricle_range_mm: tuple[float, float] = (-1.0, 4.0)
    ventricle_side_mm: float = 0.4
    hippo_shift_mm: tuple[float, float, float] = (0.8, 1.5, 2.0)  # common to both sides
    hippo_side_shift_mm: tuple[float, float, float] = (0.8, 1.2, 1.5)
    hippo_sigma_mm: float = 12.0
    hippo_rotation_deg: float = 5.0  # common to both sides, pitch and yaw
    hippo_side_rotation_deg: float = 3.0
    hippo_body_sigma_mm: tuple[float, float] = (28.0, 12.0)  # along, across the long axis
    temporal_shift_mm: float = 1.5
    temporal_sigma_mm: float = 18.0
    brain_swell: float = 0.0  # the brain scaled against the skull (fraction); 0: not drawn
    brain_swell_limit: float = 0.06


DEFAULT_AMPLITUDES = Amplitudes()


@dataclass(frozen=True, eq=False)
class Deformation:
    """Smooth invertible map between a subject head and the template: affine plus gridded displacement."""

    matrix: np.ndarray  # (3, 3) M
    offset: np.ndarray  # (3,) b
    origin: np.ndarray  # (3,) subject LPS of grid node (0, 0, 0)
    spacing: float  # grid step, mm
    field: np.ndarray  # (3, nx, ny, nz) float32, template-frame displacement D
    lesion: Lesion | None = None  # in subject coordinates, if one was composed in
    maps: TemplateMaps | None = dataclass_field(default=None, repr=False)  # the template's, for lesions
    _matrix_t: np.ndarray = dataclass_field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matrix_t", np.ascontiguousarray(np.asarray(self.matrix, dtype=float).T))

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        return tuple(self.field.shape[1:])

    def grid_points(self) -> np.ndarray:
        """Subject LPS coordinates of the grid nodes, shape (nx, ny, nz, 3)."""
        return Grid(self.grid_shape, self.spacing, self.origin).points()

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """The interpolated field ``D`` at subject points (..., 3); constant beyond the grid."""
        return sample_trilinear(self.field, _grid_to_voxel(self.origin, self.spacing), points, "nearest")

    def to_template(self, points: np.ndarray) -> np.ndarray:
        """Backward map, subject -> template (LPS mm, (..., 3)): where to sample the template image."""
        points = np.asarray(points)
        dtype = np.result_type(points.dtype, np.float32)
        out = points.reshape(-1, 3) @ self._matrix_t.astype(dtype) + self.offset.astype(dtype)
        out += self.displacement(points).reshape(-1, 3)
        return out.reshape(points.shape)

    def to_subject(self, points: np.ndarray) -> np.ndarray:
        """Forward map, template -> subject (LPS mm, (N, 3) or (3,)): the numerical inverse of ``to_template``."""
        target = np.asarray(points, dtype=float)
        flat = target.reshape(-1, 3)
        inverse = np.linalg.inv(self.matrix)
        x = (flat - self.offset) @ inverse.T
        for _ in range(INVERSE_MAX_ITERATIONS):
            residual = self.to_template(x) - flat
            if np.abs(residual).max(initial=0.0) < INVERSE_TOLERANCE_MM:
                break
            x = x - np.linalg.solve(self.jacobian(x), residual[..., None])[..., 0]
        return x.reshape(target.shape)

    def jacobian(self, points: np.ndarray, step: float = 0.25) -> np.ndarray:
        """Jacobian (N, 3, 3) of ``to_template`` at subject points, by central differences."""
        points = np.asarray(points, dtype=float).reshape(-1, 3)
        columns = []
        for a in range(3):
            delta = np.zeros(3)
            delta[a] = step
            columns.append((self.to_template(points + delta) - self.to_template(points - delta)) / (2 * step))
        return np.stack(columns, axis=-1)

    def grid_determinant(self) -> np.ndarray:
        """Smallest Jacobian determinant of ``to_template`` per grid node over the cell corners touching it."""
        return corner_determinants(self.matrix, self.field, self.spacing)

    def landmarks_to_subject(self, landmarks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Carry template landmarks into the subject head."""
        keys = list(landmarks)
        moved = self.to_subject(np.stack([landmarks[k] for k in keys]))
        return dict(zip(keys, moved))

    def lesion_weight(self, points: np.ndarray, template_points: np.ndarray | None = None) -> np.ndarray:
        """Lesion core and oedema weights (..., 2) at subject points; zeros if there is no lesion.

        Given ``template_points`` (``to_template(points)``, which the simulator has
        anyway) the weights are confined to the template's brain mask, so an
        oedema rim does not spill into bone, scalp or the orbits.
        """
        points = np.asarray(points)
        if self.lesion is None:
            return np.zeros(points.shape[:-1] + (2,), dtype=np.float32)
        weight = self.lesion.weight(points)
        if template_points is not None and self.maps is not None:
            near = weight.any(axis=-1)
            weight[near] *= self.maps.sample(self.maps.brain_fraction,
                                             np.asarray(template_points)[near])[..., None]
        return weight

    def with_lesion(self, lesion: Lesion) -> "Deformation":
        """This deformation with a space-occupying lesion (template coordinates) and its mass effect composed in."""
        if self.maps is None:
            raise ValueError("this deformation was made without a template head; cannot place a lesion")
        return compose_lesion(self, lesion, self.maps)


def identity_deformation(head: Head) -> Deformation:
    """The map that leaves the template as it is (useful as a baseline)."""
    maps = template_maps(head)
    origin, shape = _grid_box(maps, np.eye(3), np.zeros(3))
    return Deformation(np.eye(3), np.zeros(3), origin, GRID_MM, np.zeros((3, *shape), dtype=np.float32), maps=maps)


def corner_determinants(matrix: np.ndarray, disp: np.ndarray, spacing: float) -> np.ndarray:
    """Min over the 8 one-sided difference Jacobians at each node of det(M + grad D) / det(M)."""
    out = np.empty(disp.shape[1:], np.float32)
    _corner_determinants(np.asarray(matrix, np.float64), np.ascontiguousarray(disp, np.float32),
                         float(spacing), out)
    return out / np.float32(np.linalg.det(matrix))


@numba.njit(cache=True, nogil=True)
def _corner_determinants(m, disp, spacing, out):
    _, nx, ny, nz = disp.shape
    inverse = 1.0 / spacing
    for i in range(nx):
        for j in range(ny):
            for k in range(nz):
                # one-sided differences: forward ones vanish at the last node, backward ones at the first
                f0 = _column(disp, m, 0, inverse, min(i + 1, nx - 1), j, k, i, j, k)
                b0 = _column(disp, m, 0, inverse, i, j, k, max(i - 1, 0), j, k)
                f1 = _column(disp, m, 1, inverse, i, min(j + 1, ny - 1), k, i, j, k)
                b1 = _column(disp, m, 1, inverse, i, j, k, i, max(j - 1, 0), k)
                f2 = _column(disp, m, 2, inverse, i, j, min(k + 1, nz - 1), i, j, k)
                b2 = _column(disp, m, 2, inverse, i, j, k, i, j, max(k - 1, 0))
                lowest = np.inf
                for c1 in (f1, b1):  # det(c0, c1, c2) = c0 . (c1 x c2): 4 cross products for 8 choices
                    for c2 in (f2, b2):
                        x = c1[1] * c2[2] - c1[2] * c2[1]
                        y = c1[2] * c2[0] - c1[0] * c2[2]
                        z = c1[0] * c2[1] - c1[1] * c2[0]
                        lowest = min(lowest, f0[0] * x + f0[1] * y + f0[2] * z,
                                     b0[0] * x + b0[1] * y + b0[2] * z)
                out[i, j, k] = lowest


@numba.njit(cache=True, nogil=True)
def _column(disp, m, axis, inverse, i1, j1, k1, i0, j0, k0):
    """Column `axis` of M + grad D from the difference of D between two nodes `1 / inverse` apart."""
    return (m[0, axis] + (disp[0, i1, j1, k1] - disp[0, i0, j0, k0]) * inverse,
            m[1, axis] + (disp[1, i1, j1, k1] - disp[1, i0, j0, k0]) * inverse,
            m[2, axis] + (disp[2, i1, j1, k1] - disp[2, i0, j0, k0]) * inverse)


def _grid_box(maps: TemplateMaps, matrix: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Origin and shape of a grid covering the subject image of the template's head box."""
    corners = np.array(np.meshgrid(*zip(maps.head_lo, maps.head_hi), indexing="ij")).reshape(3, -1).T
    subject = (corners - offset) @ np.linalg.inv(matrix).T
    lo = subject.min(axis=0) - GRID_PAD_MM
    hi = subject.max(axis=0) + GRID_PAD_MM
    shape = tuple(int(np.ceil((h - l) / GRID_MM)) + 1 for l, h in zip(lo, hi))
    return lo, shape


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def interior_weight(depth_mm: np.ndarray, start_mm: float = 1.0, width_mm: float = 16.0) -> np.ndarray:
    """0 up to ``start_mm`` deep, rising smoothly to 1 at ``start_mm + width_mm`` deep."""
    return _smoothstep((depth_mm - start_mm) / width_mm)


def random_affine(rng: np.random.Generator, centre: np.ndarray, strength: float,
                  amp: Amplitudes = DEFAULT_AMPLITUDES) -> tuple[np.ndarray, np.ndarray]:
    """Backward affine (M, b) of a random head size and shape change about ``centre``."""
    limit = amp.scale_limit * strength
    scales = np.exp(np.clip(rng.normal(0.0, amp.scale * strength, 3), -limit, limit))
    forward = np.diag(scales)
    forward[np.triu_indices(3, 1)] = rng.normal(0.0, amp.shear * strength, 3)
    matrix = np.linalg.inv(forward)
    return matrix, centre - matrix @ centre


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], length_mm: float, rms_mm: float) -> np.ndarray:
    """(3, *shape) Gaussian-smoothed white noise on the 4 mm grid, per-component RMS ``rms_mm``.

    The noise is drawn and smoothed on a grid a quarter as fine as ``length_mm``
    and interpolated up, which is cheap and indistinguishable at this smoothness.
    """
    coarse_mm = max(GRID_MM, length_mm / 4.0)
    ratio = GRID_MM / coarse_mm
    coarse_shape = tuple(int(np.ceil((n - 1) * ratio)) + 2 for n in shape)
    noise = rng.standard_normal((3, *coarse_shape))
    coarse = np.stack([ndi.gaussian_filter(c, length_mm / coarse_mm, mode="reflect") for c in noise])
    out = upsample_linear(coarse, shape, ratio, first_axis=1)
    out *= rms_mm / max(float(out.std()), 1e-12)
    return out


def _rotation(frame_axes: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrix from angles (degrees) about the head frame's (posterior, left, superior) axes."""
    rotvec = np.radians(degrees) @ frame_axes
    return Rotation.from_rotvec(rotvec).as_matrix()


def local_affine(points: np.ndarray, centre: np.ndarray, linear: np.ndarray, shift: np.ndarray,
                 envelope: np.ndarray) -> np.ndarray:
    """Forward displacement ``envelope * ((linear - I)(p - c) + shift)`` at points (N, 3)."""
    rel = points - centre
    return envelope[:, None] * (rel @ (linear - np.eye(3)).T + shift)


def gaussian_envelope(points: np.ndarray, centre: np.ndarray, sigma: float | np.ndarray,
                      axes: np.ndarray | None = None) -> np.ndarray:
    """Gaussian bump at ``centre`` at points (N, 3); with ``axes`` (3, 3 rows) sigma is per axis."""
    scaled_axes = (np.eye(3) if axes is None else np.asarray(axes, float)) / np.reshape(sigma, (-1, 1))
    out = np.empty(len(points))
    _gaussian(np.ascontiguousarray(points, np.float64), np.asarray(centre, np.float64),
              np.ascontiguousarray(scaled_axes), out)
    return out


@numba.njit(cache=True, nogil=True)
def _gaussian(points, centre, scaled_axes, out):
    """exp(-|scaled_axes (p - centre)|^2 / 2) at every point, in one pass (numpy's version
    makes six arrays of the points' size)."""
    for n in range(points.shape[0]):
        r0, r1, r2 = points[n, 0] - centre[0], points[n, 1] - centre[1], points[n, 2] - centre[2]
        q = 0.0
        for a in range(3):
            u = scaled_axes[a, 0] * r0 + scaled_axes[a, 1] * r1 + scaled_axes[a, 2] * r2
            q += u * u
        out[n] = np.exp(-0.5 * q)


@dataclass(frozen=True)
class InteriorGrid:
    """What the interior components need, precomputed once per head on a 4 mm template-space grid."""

    origin: np.ndarray  # (3,) template LPS of node (0, 0, 0)
    shape: tuple[int, int, int]
    nodes: np.ndarray  # (n, 3) template LPS of the active nodes
    active: np.ndarray  # bool grid, nodes with some interior weight (or next to one)
    weight: np.ndarray  # (n,) interior weight at the active nodes
    swell_weight: np.ndarray | None  # (n,) 1 inside the brain, 0 from BRAIN_SWELL_REACH_MM
    # outside it; None on the default grid, which is not widened for the swell
    push: dict[str, np.ndarray]  # "L"/"R" -> (n, 3) ventricle wall push at the active nodes
    frame: np.ndarray  # rows: the head's left, posterior, superior
    thalamus: np.ndarray
    brain_centre: np.ndarray
    hippo_head: dict[str, np.ndarray]
    hippo_axis: dict[str, tuple[np.ndarray, np.ndarray]]  # side -> (centre, unit axis)
    temporal: dict[str, np.ndarray]


def interior_grid(head: Head, swell: bool = False) -> InteriorGrid:
    """The head's interior grid, computed on first use and cached while the head is alive;
    with `swell`, widened to every node the brain swell moves (5-9% more nodes), which only
    data drawn with ``Amplitudes.brain_swell`` pay for."""
    return cached_for(head, "interior_grid_swell" if swell else "interior_grid",
                      lambda: _interior_grid(head, template_maps(head), swell))


def _interior_grid(head: Head, maps: TemplateMaps, swell: bool) -> InteriorGrid:
    inside = maps.affine[:3, :3] @ np.argwhere(maps.cranial_depth_mm > 0).T
    lo = (inside.min(axis=1) + maps.affine[:3, 3]) - 2 * GRID_MM
    hi = (inside.max(axis=1) + maps.affine[:3, 3]) + 2 * GRID_MM
    shape = tuple(int(np.ceil((h - l) / GRID_MM)) + 1 for l, h in zip(lo, hi))
    points = Grid(shape, GRID_MM, lo).points().reshape(-1, 3)
    weight = interior_weight(maps.sample(maps.cranial_depth_mm, points)).reshape(shape)
    active = ndi.binary_dilation(weight > 0, iterations=1)
    swell_weight = None
    if swell:
        outside_mm = ndi.distance_transform_edt(~maps.brain, sampling=np.linalg.norm(maps.affine[:3, :3], axis=0))
        swell_weight = 1.0 - _smoothstep(maps.sample(outside_mm, points) / BRAIN_SWELL_REACH_MM).reshape(shape)
        # nodes where no component moves tissue stay still in the flow, so widening the set
        # for the swell changes nothing else
        active |= swell_weight > 0
    nodes = points[active.ravel()]
    push = {side: np.stack([maps.sample(g, nodes) for g in components], axis=-1)
            for side, components in maps.ventricle_push.items()}

    lm = head.landmarks
    frame = head_frame(lm)
    afid = {k[len(AFID_PREFIX):]: v for k, v in lm.items() if k.startswith(AFID_PREFIX)}
    heads, axis, temporal = {}, {}, {}
    for side in "LR":
        front = (afid[f"{side} superior AM temporal horn"] + afid[f"{side} inferior AM temporal horn"]) / 2
        back = afid[f"{side} indusium griseum origin"]
        heads[side] = front
        axis[side] = ((front + back) / 2, (back - front) / np.linalg.norm(back - front))
        temporal[side] = afid[f"{side} AL temporal horn"]
    return InteriorGrid(
        origin=lo, shape=shape, nodes=nodes, active=active,
        weight=weight[active], swell_weight=None if swell_weight is None else swell_weight[active],
        push=push,
        frame=np.stack([frame.left, frame.posterior, frame.superior]),
        thalamus=(lm[AC] + lm[PC]) / 2 + 6.0 * frame.superior, brain_centre=maps.brain_centre,
        hippo_head=heads, hippo_axis=axis, temporal=temporal)


def interior_velocity(grid: InteriorGrid, rng: np.random.Generator, strength: float,
                      amp: Amplitudes = DEFAULT_AMPLITUDES) -> np.ndarray:
    """Forward displacement (n, 3) of brain-interior tissue at the grid's active nodes (template frame)."""
    left, posterior, superior = grid.frame
    rot_axes = np.stack([posterior, left, superior])  # roll, pitch, yaw
    p = grid.nodes
    d = np.zeros_like(p)
    s = strength

    # deep structures: shift, rotation and AC-PC length change around the thalami
    shift = (rng.normal(0.0, 1.0, 3) * amp.deep_shift_mm * s) @ grid.frame
    rotation = _rotation(rot_axes, rng.normal(0.0, 1.0, 3) * amp.deep_rotation_deg * s)
    stretch = 1.0 + rng.normal(0.0, amp.deep_length * s)
    linear = rotation @ (np.eye(3) + (stretch - 1.0) * np.outer(posterior, posterior))
    d += local_affine(p, grid.thalamus, linear, shift, gaussian_envelope(p, grid.thalamus, amp.deep_sigma_mm))

    # the brain turned against the skull
    rotation = _rotation(rot_axes, rng.normal(0.0, 1.0, 3) * np.asarray(amp.brain_rotation_deg) * s)
    d += (p - grid.brain_centre) @ (rotation - np.eye(3)).T

    # ventricles: walls move out (a > 0) or in by about a mm
    lo, hi = amp.ventricle_range_mm
    common = np.clip(rng.normal(amp.ventricle_mean_mm, amp.ventricle_mm), lo, hi) * s
    for side in "LR":
        d += (common + rng.normal(0.0, amp.ventricle_side_mm * s)) * grid.push[side]

    # hippocampus and temporal lobe, a common and a per-side part
    common = (rng.normal(0.0, 1.0, 3) * amp.hippo_shift_mm * s) @ grid.frame
    common_angles = rng.normal(0.0, amp.hippo_rotation_deg * s, 2)
    for side in "LR":
        shift = common + (rng.normal(0.0, 1.0, 3) * amp.hippo_side_shift_mm * s) @ grid.frame
        d += gaussian_envelope(p, grid.hippo_head[side], amp.hippo_sigma_mm)[:, None] * shift
        centre, axis = grid.hippo_axis[side]
        across = np.cross(axis, left)
        across /= np.linalg.norm(across)
        body_axes = np.stack([axis, across, np.cross(axis, across)])
        sigma = np.array([amp.hippo_body_sigma_mm[0], amp.hippo_body_sigma_mm[1], amp.hippo_body_sigma_mm[1]])
        pitch, yaw = common_angles + rng.normal(0.0, amp.hippo_side_rotation_deg * s, 2)
        angles = np.array([0.0, pitch, yaw if side == "L" else -yaw])  # common yaw splays both alike
        rotation = _rotation(rot_axes, angles)
        d += local_affine(p, centre, rotation, np.zeros(3), gaussian_envelope(p, centre, sigma, body_axes))
        shift = rng.normal(0.0, amp.temporal_shift_mm * s, 3)
        d += gaussian_envelope(p, grid.temporal[side], amp.temporal_sigma_mm)[:, None] * shift

    d *= grid.weight[:, None]
    if amp.brain_swell > 0:  # drawn last, so that the other components keep their draws
        if grid.swell_weight is None:
            raise ValueError("a brain swell needs the grid widened for it: interior_grid(head, swell=True)")
        limit = amp.brain_swell_limit * s
        scale = float(np.clip(rng.normal(0.0, amp.brain_swell * s), -limit, limit))
        d += scale * (p - grid.brain_centre) * grid.swell_weight[:, None]
    return d


def exponentiate(velocity: np.ndarray, active: np.ndarray, steps: int = SQUARING_STEPS) -> np.ndarray:
    """Displacement (3, ...) of the flow of a stationary velocity field (3, ...) given in grid units.

    Scaling and squaring: a tiny step ``v / 2**steps`` composed with itself
    ``steps`` times. The result is smooth and invertible, and its inverse is
    the flow of ``-v``, which is how the backward map is made from forward
    tissue displacements even where they expand a thin horn several-fold.
    The velocity must vanish outside ``active`` (the flow then does too).
    """
    disp = velocity / 2.0 ** steps
    nodes = np.argwhere(active)
    squared = disp.copy()  # zero outside `active` in both, which is never written
    for _ in range(steps):
        _compose_with_itself(disp, nodes, squared)
        disp, squared = squared, disp
    return disp


@numba.njit(cache=True, nogil=True)
def _compose_with_itself(disp, nodes, out):
    """`out` = D(x) + D(x + D(x)) at the grid `nodes` (k, 3) of a displacement D (3, ...) in
    grid units, sampled trilinearly with clamped coordinates."""
    _, nx, ny, nz = disp.shape
    for n in range(nodes.shape[0]):
        i, j, k = nodes[n, 0], nodes[n, 1], nodes[n, 2]
        x0, x1, fx, _ = corner(i + disp[0, i, j, k], nx, True)
        y0, y1, fy, _ = corner(j + disp[1, i, j, k], ny, True)
        z0, z1, fz, _ = corner(k + disp[2, i, j, k], nz, True)
        for c in range(3):
            out[c, i, j, k] = disp[c, i, j, k] + trilinear_at(disp, c, x0, x1, fx, y0, y1, fy, z0, z1, fz)


def interior_backward(grid: InteriorGrid, rng: np.random.Generator, strength: float,
                      amp: Amplitudes = DEFAULT_AMPLITUDES) -> np.ndarray:
    """Backward displacement (3, *grid.shape), template frame, of random interior changes."""
    velocity = np.zeros((3, *grid.shape))
    velocity[:, grid.active] = interior_velocity(grid, rng, strength, amp).T / GRID_MM
    return exponentiate(-velocity, grid.active) * GRID_MM


def sample_grid(field: np.ndarray, origin: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear (n, 3) values of a (3, ...) field on a GRID_MM grid at LPS points (n, 3); 0 outside."""
    return sample_trilinear(field, _grid_to_voxel(origin, GRID_MM), points)


def _grid_to_voxel(origin: np.ndarray, spacing: float) -> np.ndarray:
    """LPS -> index affine of an axis-aligned grid with node (0, 0, 0) at `origin`."""
    return np.hstack([np.eye(3) / spacing, -np.asarray(origin, float)[:, None] / spacing])


def random_deformation(head: Head, rng: np.random.Generator, strength: float = 1.0, *, interior: bool = True,
                       lesion: Lesion | None = None, amplitudes: Amplitudes = DEFAULT_AMPLITUDES) -> Deformation:
    """A random other head: global size/shape, smooth whole-head field, independent brain interior, optional lesion.

    The global part is drawn from its own stream, so the same seed with
    ``interior=False`` gives the same outline with the template's interior.
    ``lesion`` (from ``random_lesion``, template coordinates) adds its mass effect.
    """
    maps = template_maps(head)
    global_rng, interior_rng = (np.random.default_rng(seed) for seed in rng.integers(2**63, size=2))
    matrix, offset = random_affine(global_rng, maps.brain_centre, strength, amplitudes)
    origin, shape = _grid_box(maps, matrix, offset)
    disp = smooth_noise(global_rng, shape, amplitudes.smooth_length_mm, amplitudes.smooth_mm * strength)
    inner = np.zeros_like(disp)
    if interior:
        grid = interior_grid(head, swell=amplitudes.brain_swell > 0)
        backward = interior_backward(grid, interior_rng, strength, amplitudes)
        template = Grid(shape, GRID_MM, origin).points() @ matrix.T + offset + np.moveaxis(disp, 0, -1)
        # zero wherever no cell of the backward field's active nodes is reached
        inner = np.moveaxis(sample_grid(backward, grid.origin, template), -1, 0)
    field = _keep_invertible(matrix, disp, inner)
    deformation = Deformation(matrix, offset, origin, GRID_MM, field.astype(np.float32), maps=maps)
    if lesion is not None:
        deformation = compose_lesion(deformation, lesion, maps)
    return deformation


def _keep_invertible(matrix: np.ndarray, base: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``base + extra`` with ``extra`` (then, if need be, ``base``) scaled down by 0.7 until the
    Jacobian determinant is within [MIN_DET, MAX_DET]; shrinking ``extra`` first keeps the outline."""
    for _ in range(MAX_SHRINK_STEPS):
        field = base + extra
        det = corner_determinants(matrix, field, GRID_MM)
        if det.min() >= MIN_DET and det.max() <= MAX_DET:
            return field
        if np.any(extra):
            extra = extra * 0.7
        else:
            base = base * 0.7
    return base + extra


def compose_lesion(deformation: Deformation, lesion: Lesion, maps: TemplateMaps) -> Deformation:
    """Add a lesion's mass effect (limited to the brain) to ``deformation``; the lesion moves with the anatomy."""
    centre = deformation.to_subject(lesion.centre)
    placed = replace(lesion, centre=centre)
    nodes = deformation.grid_points().reshape(-1, 3)
    depth = maps.sample(maps.cranial_depth_mm, deformation.to_template(nodes))
    weight = interior_weight(depth, 0.5, LESION_WEIGHT_WIDTH_MM)
    push = placed.push(nodes) * weight[:, None]
    shape = deformation.grid_shape
    for _ in range(MAX_SHRINK_STEPS):
        disp = deformation.displacement(nodes - push) - push @ deformation.matrix.T
        field = np.moveaxis(disp.reshape(*shape, 3), -1, 0)
        if corner_determinants(deformation.matrix, field, deformation.spacing).min() >= MIN_DET / 4:
            break
        push = push * 0.7
    return replace(deformation, field=field.astype(np.float32), lesion=placed)

