"""Orientation-Net's input grid, its training targets and how its outputs become planes.

The network sees the localizer resampled onto a grid centred on the brain that
Coverage-Net found and scaled to it (the brain fills about three quarters of the
grid, so head size matters less). For every plane key it predicts two maps:

- the signed distance (mm, scaled by `DISTANCE_RANGE_MM`, saturated beyond) from
  each voxel to the plane, learnt everywhere the decoding may look for votes (a
  sphere about the plane's centre); every voxel that finds itself in the band
  near the plane is a vote for where the plane lies (`geometry.fitting` turns
  thousands of votes into a plane far finer than a voxel), and voxels beyond the
  band learn to say so, so that no untrained voxel casts a vote;
- a heat blob at the plane's centre (where the field of view goes).

Normals follow the catalogue's convention (Left, Posterior, Superior), so the
head frame comes from the fitted MSP and ACPC normals, and every plane gets its
row, column and prescription from `geometry.catalogue.make_plane`. Given the
network's input, the MSP is first refined by the localizer's own left-right
symmetry (`cascade.symmetry`), and the normals the catalogue ties to the head
frame are taken from it (`geometry.catalogue.frame_constrained_normal`).
"""

import itertools
from dataclasses import dataclass, replace

import numpy as np

from isp_node.geometry.catalogue import (
    AFID, MIDLINE_AFIDS, PLANE_KEYS, PRESCRIPTIONS, SAGITTAL, HeadFrame, fit_plane,
    frame_constrained_normal, hippocampal_axis, iac_line, iac_normals, make_plane, oriented)
from isp_node.geometry.fitting import PlaneFit, fit_distance_votes, weighted_centres
from isp_node.geometry.planes import (
    Plane, orthogonal_unit, plane_json, rigid_parts, transform_plane, unit)
from isp_node.cascade.symmetry import symmetry_plane
from isp_node.pipeline.threads import thread_pool
from isp_node.pipeline.volume import Grid, LocalizerVolume

ORIENTATION_SHAPE = (64, 64, 64)
BRAIN_FILL = 0.75  # of the grid's width taken by the brain's longest extent
SPACING_LIMITS_MM = (2.5, 4.5)
# The fine stage: a 72 mm cube at 1.5 mm about the AC-PC midpoint the first stage found,
# fine enough to show the commissures, the pituitary and the hippocampi that the brain-wide
# grid blurs; a smaller, cheaper network input than the first stage's
FINE_SHAPE = (48, 48, 48)
FINE_SPACING_MM = 1.5
# the keys the fine stage plans: those it measured better than the first stage on
# localizers apart from the evaluation's (`docs/fine_stage_keys.py`, in its model card)
FINE_KEYS = ("ACPC", "OPTIC_AX", "PIT_SAG", "PIT_COR", "IAC_COR", "HIPPO_AX", "HIPPO_COR", "COW")
DISTANCE_RANGE_MM = 20.0  # distances are resolved within +-this of the plane, saturated beyond
SATURATED_WEIGHT = 0.25  # loss weight of a voxel beyond the band (voxels in it weigh 1)
TRAINED_MARGIN_MM = 10.0  # distances are learnt this much beyond where the decoding looks
HEAT_SIGMA_MM = 6.0
# how far from its centre (mm, in the plane) a plane's votes count: whole-brain planes
# vote across the brain, small targets near themselves
VOTE_RADIUS_MM = {"MSP": 70.0, "ACPC": 70.0, "OM": 70.0, "OPTIC_AX": 35.0, "OPTIC_SAG_L": 25.0,
                  "OPTIC_SAG_R": 25.0, "ORBIT_COR": 40.0, "PIT_SAG": 25.0, "PIT_COR": 25.0,
                  "IAC_AX": 35.0, "IAC_COR": 35.0, "HIPPO_AX": 45.0, "HIPPO_COR": 40.0,
                  "COW": 45.0}


def orientation_grid(brain_centre: np.ndarray, brain_size_mm: float,
                     shape: tuple[int, int, int] = ORIENTATION_SHAPE) -> Grid:
    """The grid centred on the brain, its spacing such that the brain's longest extent
    fills `BRAIN_FILL` of it (within `SPACING_LIMITS_MM`)."""
    spacing = float(np.clip(brain_size_mm / (BRAIN_FILL * max(shape)), *SPACING_LIMITS_MM))
    return Grid.centred(np.asarray(brain_centre, dtype=float), shape, spacing)


def fine_grid(acpc_midpoint: np.ndarray) -> Grid:
    """The fine stage's grid, centred on (an estimate of) the AC-PC midpoint."""
    return Grid.centred(np.asarray(acpc_midpoint, dtype=float), FINE_SHAPE, FINE_SPACING_MM)


def commissure_grid(acpc_midpoint: np.ndarray) -> Grid:
    """The commissure look's grid: 48 mm about (an estimate of) the AC-PC midpoint, 1 mm voxels."""
    return Grid.centred(np.asarray(acpc_midpoint, dtype=float), COMMISSURE_SHAPE, COMMISSURE_SPACING_MM)


def plane_array(planes: dict[str, Plane]) -> np.ndarray:
    """(K, 2, 3) centre and normal of every plane key in `PLANE_KEYS` order (NaN if absent):
    all the targets need, in a form shards can hold."""
    out = np.full((len(PLANE_KEYS), 2, 3), np.nan, np.float32)
    for i, key in enumerate(PLANE_KEYS):
        if key in planes:
            out[i] = [planes[key].centre, planes[key].normal]
    return out


# the keys whose planes change sides in a mirror image of the head
MIRRORED_KEYS = {"OPTIC_SAG_L": "OPTIC_SAG_R", "OPTIC_SAG_R": "OPTIC_SAG_L"}


def mirrored_plane_array(planes: np.ndarray, x_mm: float) -> np.ndarray:
    """The `plane_array` of the head mirrored left-right about the plane x = `x_mm` (LPS):
    the planes a mirrored localizer shows. Left and right planes swap, and normals keep
    the catalogue's convention (a sagittal plane's normal points to the mirrored head's
    Left, which is the mirror image of the original's right)."""
    out = np.array(planes, dtype=np.float32, copy=True)
    out[:, 0, 0] = 2 * x_mm - out[:, 0, 0]
    out[:, 1, 0] *= -1
    sagittal = np.array([PRESCRIPTIONS[key].kind == SAGITTAL for key in PLANE_KEYS])
    out[sagittal, 1] *= -1
    return out[[PLANE_KEYS.index(MIRRORED_KEYS.get(key, key)) for key in PLANE_KEYS]]


@dataclass(frozen=True)
class Targets:
    """What Orientation-Net learns on one grid, channels in `PLANE_KEYS` order."""

    distance: np.ndarray  # (X, Y, Z, K) signed distance / DISTANCE_RANGE_MM, clipped to [-1, 1]
    weight: np.ndarray  # (X, Y, Z, K) loss weight of the distance (0 where it is not learnt)
    heat: np.ndarray  # (X, Y, Z, K) Gaussian blob at each plane's centre

    def stacked(self) -> np.ndarray:
        """(X, Y, Z, 3K) float32: distance, weight, heat, as the training loss takes them."""
        return np.concatenate([self.distance, self.weight, self.heat], axis=-1)


def plane_targets(grid: Grid, planes: np.ndarray) -> Targets:
    """Targets on `grid` of planes given as `plane_array` (patient LPS); absent keys get no weight."""
    shape = (*grid.shape, len(PLANE_KEYS))
    distance, weight, heat = (np.zeros(shape, np.float32) for _ in range(3))
    axes = grid.axes()
    for k, key in enumerate(PLANE_KEYS):
        centre, normal = np.asarray(planes[k], dtype=float)
        if not np.all(np.isfinite(centre)):
            continue
        d = grid.projection(centre, normal).reshape(grid.shape)
        radius2 = grid.squared_distance(centre)
        distance[..., k] = np.clip(d / DISTANCE_RANGE_MM, -1, 1)
        reach = VOTE_RADIUS_MM[key] + DISTANCE_RANGE_MM + TRAINED_MARGIN_MM
        weight[..., k] = (radius2 < reach**2) * np.where(np.abs(d) < DISTANCE_RANGE_MM, 1.0,
                                                         SATURATED_WEIGHT)
        box = np.ix_(*(np.flatnonzero(np.abs(axis - c) < 4 * HEAT_SIGMA_MM) for axis, c in zip(axes, centre)))
        heat[..., k][box] = np.exp(-radius2[box] / (2 * HEAT_SIGMA_MM**2))  # nothing beyond 4 sigma
    return Targets(distance, weight, heat)


# The fine stage's landmark head finds the midline AFIDs, which define the MSP and the ACPC
# plane, as points: one softmax over the grid each, learnt against a Gaussian about the true
# point (AC and PC first: the ACPC plane contains them)
FINE_LANDMARKS = MIDLINE_AFIDS
LANDMARK_SIGMA_MM = 2.0
LANDMARK_REACH = 3  # voxels about a softmax's peak whose mean is the point
# AC and PC found further apart or closer than this are not believed (adults: 20-38 mm in
# the simulated individuals, heads scaled by up to 25%)
COMMISSURE_DISTANCE_MM = (15.0, 45.0)
# the ACPC normal is taken this far from the votes' plane towards the plane through AC and PC:
# halfway, its angle errs as little at the median as from the points alone, 0.3-0.6 degree
# less at the p95, and agrees better between poses (models/orientation_fine_net.md)
COMMISSURE_WEIGHT = 0.5
# The commissure look (since 2026-12-07, where `orientation_commissure_net.keras` is installed):
# AC and PC found again on a finer grid about the midpoint of those the fine stage found, in
# its head frame; the points taken are the mean of both looks' (`COMMISSURE_SHARE` of the
# commissure look's), and the ACPC normal is then the plane through them
# (`COMMISSURE_LOOK_WEIGHT`). Chosen on new MNI individuals (models/orientation_commissure_net.md).
COMMISSURE_SHAPE = (48, 48, 48)
COMMISSURE_SPACING_MM = 1.0
COMMISSURE_SIGMA_MM = 1.5  # the commissure look's landmark targets (the fine stage's: LANDMARK_SIGMA_MM)
COMMISSURE_SHARE = 0.5
COMMISSURE_LOOK_WEIGHT = 1.0
# the midline landmarks that place the MSP: those the fine grid holds in most heads (the culmen
# and the genu of the corpus callosum mostly lie outside its 72 mm cube, and their maps were
# seldom taught); the MSP given to the fine stage (the symmetry's) is turned halfway towards
# their plane, if at least MIN_MSP_LANDMARKS of them lie inside the grid (halfway was best of
# 0.3-1 on new individuals of the training heads: models/orientation_fine_net.md)
MSP_LANDMARKS = tuple(k for k in FINE_LANDMARKS if k not in (AFID + "culmen", AFID + "genu of CC"))
MIN_MSP_LANDMARKS = 4
MIDLINE_WEIGHT = 0.5
# ... and if they span a plane: their RMS spread along their second principal axis at least
# this (the eight on the MNI, pydeface and Colin27 heads: 6.5-8.3 mm; an untrained network
# puts every point in one place)
MIN_MIDLINE_SPREAD_MM = 3.0


def within(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Which `points` (K, 3) lie inside `grid` at least one voxel from its faces: where a
    landmark map can hold, and be taught, its point."""
    index = grid.to_voxel(np.atleast_2d(points))
    return np.all((index >= 1) & (index <= np.array(grid.shape) - 2), axis=-1)


def landmark_targets(grid: Grid, points: np.ndarray, sigma_mm: float = LANDMARK_SIGMA_MM) -> np.ndarray:
    """(X, Y, Z, K) what a landmark head learns for `points` (K, 3): a Gaussian of `sigma_mm`
    about each point summing to 1, or zeros where the point lies outside the grid (or on its
    faces)."""
    out = np.zeros((*grid.shape, len(points)), np.float32)
    axes = grid.axes()
    points = np.asarray(points, dtype=float)
    for k in np.flatnonzero(within(grid, points)):
        x, y, z = (np.exp(-(axis - c) ** 2 / (2 * sigma_mm**2))
                   for axis, c in zip(axes, points[k]))
        blob = x[:, None, None] * y[None, :, None] * z[None, None, :]
        out[..., k] = blob / blob.sum()
    return out


def landmark_points(logits: np.ndarray, grid: Grid, reach: int = LANDMARK_REACH) -> np.ndarray:
    """(K, 3) points (patient mm) from the landmark head's logits (X, Y, Z, K): each the mean
    of its softmax within `reach` voxels of the peak, finer than a voxel and deaf to a second
    peak elsewhere."""
    out = np.empty((logits.shape[-1], 3))
    for k in range(logits.shape[-1]):
        channel = logits[..., k]
        peak = np.array(np.unravel_index(np.argmax(channel), channel.shape))
        low, high = np.maximum(peak - reach, 0), np.minimum(peak + reach + 1, channel.shape)
        window = channel[tuple(slice(a, b) for a, b in zip(low, high))]
        weight = np.exp(window - window.max())
        index = np.stack(np.meshgrid(*map(np.arange, low, high), indexing="ij"), axis=-1)
        out[k] = grid.origin + grid.spacing * (index * weight[..., None]).sum((0, 1, 2)) / weight.sum()
    return out


@dataclass(frozen=True)
class FittedPlane:
    plane: Plane
    fit: PlaneFit  # the votes' fit (the MSP takes normal and offset from the symmetry if it agreed)
    # how well the localizer mirrors itself about the MSP that oriented this plane: 0 where
    # the symmetry did not confirm the MSP, None where it was not looked at
    mirror_match: float | None = None
    # an ACPC plane placed by the commissures found: how far its votes' plane was from
    # perpendicular to the MSP (the frame's error, which the confidence weighs; the plane
    # itself is perpendicular by construction)
    frame_error_deg: float | None = None


# Where each plane's centre lies relative to the AC-PC midpoint, in the head frame (left,
# posterior, superior; mm), on the MNI template (its catalogue); and the brain's centre
# (Coverage-Net's, which centres the grid) the same way. Individuals differ from these by
# millimetres: close enough to choose the voxels whose votes count, and to centre a field
# of view where the heat map has no clear peak.
CENTRE_PRIOR_MM = {"MSP": (0.0, 0.0, 0.0), "ACPC": (0.0, 0.0, 0.0), "OM": (0.0, -37.6, -42.4),
                   "OPTIC_AX": (0.0, -38.3, -23.7), "OPTIC_SAG_L": (24.6, -49.2, -27.8),
                   "OPTIC_SAG_R": (-26.0, -49.3, -28.0), "ORBIT_COR": (0.0, -60.5, -32.0),
                   "PIT_SAG": (0.0, -15.3, -27.6), "PIT_COR": (0.0, -15.3, -27.6),
                   "IAC_AX": (0.0, 12.1, -39.8), "IAC_COR": (0.0, 12.1, -39.8),
                   "HIPPO_AX": (0.0, -4.9, -19.0), "HIPPO_COR": (0.0, -4.9, -19.0),
                   "COW": (0.0, -3.1, -20.3)}
BRAIN_CENTRE_FROM_ACPC_MM = (0.0, 11.5, 13.2)
# votes closer than this are near copies of each other (the network sees them through much
# the same voxels): the fine stage's distances vote averaged over blocks of 2 x 2 x 2 voxels,
# at a quarter of the cost
VOTE_SPACING_MM = 3.0
HEAT_TRUSTED = 0.5  # a heat peak at least this high places the centre
HEAT_REACH_MM = 25.0  # ... if it lies this close to where the prior puts it


def planes_from_outputs(grid: Grid, distance: np.ndarray, heat: np.ndarray,
                        core: float = 0.25, band: float = 0.75,
                        volume: LocalizerVolume | None = None,
                        centre_from_acpc_mm: tuple[float, float, float] = BRAIN_CENTRE_FROM_ACPC_MM,
                        msp: "FittedPlane | None" = None,
                        keys: tuple[str, ...] = PLANE_KEYS,
                        commissures: tuple[np.ndarray, np.ndarray] | None = None,
                        midline: np.ndarray | None = None,
                        commissure_weight: float = COMMISSURE_WEIGHT
                        ) -> dict[str, FittedPlane]:
    """Planes from the network's distance and heat maps (X, Y, Z, K), the grid's centre
    lying `centre_from_acpc_mm` from the AC-PC midpoint (the brain's centre for the first
    stage, the midpoint itself for the fine stage). MSP and ACPC first, from the votes
    around the grid's centre: they give the head frame and the AC-PC midpoint. Then every
    plane from the votes around its centre (the heat peak where it is clear, else the
    prior), fitted first to the votes closest to it (within `core` of the range), then to
    all within `band`; oriented and prescribed as the catalogue does. With the network's
    input `volume`, the MSP is refined by the localizer's symmetry before it orients
    anything; an `msp` found before (by the first stage) is taken as it is. With the
    `commissures` (AC, PC) found as points a plausible distance apart, the ACPC plane goes
    through their midpoint, which is the AC-PC midpoint, perpendicular to the MSP, and is
    turned `commissure_weight` of the way towards the plane through both
    (`through_commissures`; its vote fit gives its quality). With at least
    `MIN_MSP_LANDMARKS` `midline` landmarks found (N, 3) that span a plane, the MSP is
    turned towards it first (`towards_midline`). Only `keys` are planned; a key whose
    votes cannot be fitted is left out."""
    index = {key: k for k, key in enumerate(PLANE_KEYS)}
    if commissures is not None and not (COMMISSURE_DISTANCE_MM[0] < np.linalg.norm(
            np.subtract(*commissures)) < COMMISSURE_DISTANCE_MM[1]):
        commissures = None
    votes_grid, votes_distance = pooled(grid, distance, max(1, round(VOTE_SPACING_MM / grid.spacing)))

    def fit(key: str, centre: np.ndarray) -> PlaneFit | None:
        reach = VOTE_RADIUS_MM[key] + DISTANCE_RANGE_MM
        near, box = votes_grid.window(centre, reach)
        d = votes_distance[box + (index[key],)]
        votes = (near.squared_distance(centre) < reach**2) & (np.abs(d) < band)
        d = d[votes]
        at = near.origin + near.spacing * np.argwhere(votes)
        inner = np.abs(d) < core
        try:
            first = fit_distance_votes(at[inner], d[inner] * DISTANCE_RANGE_MM)
            return fit_distance_votes(at, d * DISTANCE_RANGE_MM, start=first)
        except ValueError:
            return None

    brain_centre = grid.centre
    given, mirror_match = msp is not None, None if msp is None else msp.mirror_match
    framing = ("ACPC",) if given else ("MSP", "ACPC")
    frame_fits = dict(zip(framing, thread_pool().map(lambda key: fit(key, brain_centre), framing)))
    msp, acpc = msp.fit if given else frame_fits["MSP"], frame_fits["ACPC"]
    if msp is None or acpc is None:
        return {}  # no head frame: nothing can be oriented
    if volume is not None and not given:
        mirror = symmetry_plane(volume, brain_centre, msp.normal, msp.offset)
        mirror_match = mirror.match if mirror.trusted else 0.0
        if mirror.trusted:
            msp = replace(msp, normal=mirror.normal, offset=mirror.offset)
    if midline is not None and len(midline) >= MIN_MSP_LANDMARKS and \
            spread_mm(midline) >= MIN_MIDLINE_SPREAD_MM:
        msp = towards_midline(msp, midline)
    frame_error = None
    if commissures is not None:
        frame_error = off_perpendicular_deg(msp.normal, acpc.normal)
        acpc = through_commissures(acpc, msp.normal, *commissures, weight=commissure_weight)
    peaks = heat.max(axis=0).max(axis=0).max(axis=0)  # axis by axis: numpy vectorises that
    frame = frame_from(msp.normal, acpc.normal)
    axes = np.stack([frame.left, frame.posterior, frame.superior])
    near_mid = np.mean(commissures, axis=0) if commissures is not None else \
        brain_centre - np.asarray(centre_from_acpc_mm) @ axes
    acpc_mid = msp.project(acpc.project(near_mid))
    clear = [key for key in keys if peaks[index[key]] >= HEAT_TRUSTED]
    blobs = dict(zip(clear, weighted_centres(heat[..., [index[key] for key in clear]],
                                             grid.origin, grid.spacing)))
    centres = {}
    for key in keys:
        centre = acpc_mid + np.asarray(CENTRE_PRIOR_MM[key]) @ axes
        if key in blobs and np.linalg.norm(blobs[key] - centre) < HEAT_REACH_MM:
            centre = blobs[key]
        centres[key] = centre
    fitted = {"MSP": msp, "ACPC": acpc}
    others = [key for key in keys if key not in fitted]
    fitted |= zip(others, thread_pool().map(lambda key: fit(key, centres[key]), others))
    planes = {}
    for key, centre in centres.items():
        found = fitted[key]
        if found is not None:
            normal = frame_constrained_normal(key, found.normal, frame)
            planes[key] = FittedPlane(make_plane(key, found.project(centre), normal, frame), found,
                                      mirror_match, frame_error if key == "ACPC" else None)
    if "HIPPO_AX" in planes and "HIPPO_COR" in planes:
        # the hippocampal axis, both planes' one free angle, is found better from the axial
        # plane's votes than from the coronal's (model card); the coronal keeps its position
        cor = planes["HIPPO_COR"]
        axis = hippocampal_axis(planes["HIPPO_AX"].plane.normal, frame)
        planes["HIPPO_COR"] = replace(cor, plane=make_plane("HIPPO_COR", cor.plane.centre, axis, frame))
    return planes


def through_commissures(acpc: PlaneFit, msp_normal: np.ndarray, ac: np.ndarray, pc: np.ndarray,
                        weight: float = COMMISSURE_WEIGHT) -> PlaneFit:
    """`acpc` moved through the midpoint of `ac` and `pc` and turned, perpendicular to the MSP,
    `weight` of the way from its own normal to that of the plane containing both (1: the
    catalogue's plane through them; its normal keeps its side)."""
    axis = np.asarray(pc, dtype=float) - ac
    posterior = orthogonal_unit(axis, msp_normal)
    through = oriented(unit(np.cross(msp_normal, posterior)), acpc.normal)
    voted = orthogonal_unit(acpc.normal, msp_normal)
    normal = unit(weight * through + (1.0 - weight) * voted)
    return replace(acpc, normal=normal, offset=float(normal @ (np.asarray(ac) + pc) / 2))


def iac_planes(ax: FittedPlane, cor: FittedPlane, frame: HeadFrame) -> tuple[FittedPlane, FittedPlane]:
    """IAC_AX and IAC_COR as section 4 makes them, from what the stages found: the line through
    the IACs from IAC_AX's normal, the pitch from the AC-PC plane (`frame`'s Superior), each
    plane where its votes put it, and both centred on one IAC midpoint. The planes' own votes
    pitch them worse than the AC-PC plane does (models/orientation_net.md)."""
    ax_normal, cor_normal = iac_normals(frame.superior, iac_line(ax.plane.normal, frame.left), frame.left)
    # IAC_AX's centre moved across IAC_COR's normal, which lies in IAC_AX, onto IAC_COR
    centre = ax.plane.centre - ((ax.plane.centre - cor.plane.centre) @ cor_normal) * cor_normal
    return (replace(ax, plane=make_plane("IAC_AX", centre, ax_normal, frame)),
            replace(cor, plane=make_plane("IAC_COR", centre, cor_normal, frame)))


def perpendicular_to(found: FittedPlane, key: str, normal: np.ndarray, frame: HeadFrame) -> FittedPlane:
    """Plane `key` turned the least that makes it perpendicular to a plane of `normal` (as the
    catalogue makes the optic nerves' sagittal planes to OPTIC_AX), about its own centre."""
    turned = orthogonal_unit(found.plane.normal, normal)
    return replace(found, plane=make_plane(key, found.plane.centre, turned, frame))


def spread_mm(points: np.ndarray) -> float:
    """RMS spread (mm) of `points` (N, 3) along their second principal axis: 0 where they lie
    on a line or in one place, so that no plane can be fitted to them."""
    points = np.asarray(points, dtype=float)
    return float(np.linalg.svd(points - points.mean(axis=0), compute_uv=False)[1] / np.sqrt(len(points)))


def towards_midline(msp: PlaneFit, points: np.ndarray, weight: float = MIDLINE_WEIGHT) -> PlaneFit:
    """`msp` turned `weight` of the way from its normal to that of the least-squares plane
    through the midline landmark `points` (N, 3), and moved as far towards their centroid
    (1: the catalogue's MSP through them; the normal keeps its side)."""
    centroid, normal = fit_plane(points)
    turned = unit((1.0 - weight) * msp.normal + weight * oriented(normal, msp.normal))
    point = centroid - (1.0 - weight) * (msp.normal @ centroid - msp.offset) * msp.normal
    return replace(msp, normal=turned, offset=float(turned @ point))


def pooled(grid: Grid, maps: np.ndarray, step: int) -> tuple[Grid, np.ndarray]:
    """Maps (X, Y, Z, K) averaged over blocks of `step`^3 voxels, on the grid of the blocks'
    centres (a signed distance, linear within a block, keeps its meaning; partial blocks at
    the far edges are dropped)."""
    if step == 1:
        return grid, maps
    shape = tuple(n // step for n in grid.shape)
    ends = [n * step for n in shape]
    blocks = [maps[i:ends[0]:step, j:ends[1]:step, k:ends[2]:step]
              for i, j, k in itertools.product(range(step), repeat=3)]
    return (Grid(shape, grid.spacing * step, grid.origin + grid.spacing * (step - 1) / 2),
            sum(blocks) / np.float32(step**3))


def moved_fit(fitted: FittedPlane, matrix: np.ndarray) -> FittedPlane:
    """A fitted plane carried by a rigid 4x4 transform, its vote fit with it."""
    rotation, translation = rigid_parts(matrix)
    fit = fitted.fit
    normal = rotation @ fit.normal
    return replace(fitted, plane=transform_plane(fitted.plane, matrix),
                   fit=replace(fit, normal=normal, offset=float(fit.offset + normal @ translation)))


def head_frame_transform(left: np.ndarray, superior: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The rigid 4x4 transform that turns a head whose MSP and ACPC normals are `left` and
    `superior` upright (its Left, Posterior, Superior along the patient axes) about `centre`."""
    frame = frame_from(left, superior)
    rotation = np.stack([frame.left, frame.posterior, frame.superior])
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, centre - rotation @ centre
    return matrix


def frame_from(left: np.ndarray, superior: np.ndarray) -> HeadFrame:
    """The head frame of fitted MSP (Left) and ACPC (Superior) normals."""
    left = unit(left)
    superior = orthogonal_unit(superior, left)
    return HeadFrame(left, np.cross(superior, left), superior)


# Confidence of a fitted plane, provisional until calibrated on held-out errors: the votes
# should agree to within about EXPECTED_RESIDUAL_MM, be many, form a true distance field
# (gradient 1), MSP must be perpendicular to ACPC (every plane is oriented by them), and
# the localizer should mirror itself about the MSP (`symmetry`; the strongest of these
# signals, but far from a calibrated one: see the model card). OK only from OK_CONFIDENCE,
# the lowest confidence at which at least 95% of the planes over 3 degrees or 3 mm off are
# not OK on each tuning head (`docs/status_threshold.py`); with these weak signals that
# leaves few planes OK and flags most good ones (models/orientation_net.md, "Status").
EXPECTED_RESIDUAL_MM = 2.0
MIN_SUPPORT = 200.0
MIRROR_MATCH_RANGE = (0.6, 0.9)  # the symmetry's match from doubtful to convincing ...
UNCONFIRMED_FRAME = 0.25  # ... and the factor where it did not confirm the MSP at all
OK_CONFIDENCE, LOW_CONFIDENCE = 0.88, 0.2


def plane_confidence(fit: PlaneFit, frame_error_deg: float, mirror_match: float | None = None) -> float:
    """0..1 from the fit's residual, support and gradient, the head frame's error and how
    well the localizer mirrors itself about the MSP (if that was looked at)."""
    low, high = MIRROR_MATCH_RANGE
    mirror = 1.0 if mirror_match is None else float(np.clip((mirror_match - low) / (high - low),
                                                            UNCONFIRMED_FRAME, 1.0))
    return float(np.exp(-max(fit.residual_mm - EXPECTED_RESIDUAL_MM, 0.0) / 4.0)
                 * min(1.0, fit.support / MIN_SUPPORT)
                 * np.exp(-abs(fit.gradient - 1.0) / 0.2)
                 * np.exp(-frame_error_deg / 3.0)
                 * mirror)


def off_perpendicular_deg(a: np.ndarray, b: np.ndarray) -> float:
    """How far two unit normals are from perpendicular, in degrees."""
    return float(np.degrees(np.arcsin(min(abs(float(a @ b)), 1.0))))


def planned_planes(fitted: dict[str, FittedPlane]) -> list[dict]:
    """The planner's JSON entries (`pipeline.planner`) of fitted planes, with confidence and
    status (OK / LOW_CONFIDENCE / FAILED)."""
    if not fitted:
        return []
    acpc = fitted["ACPC"]
    frame_error = acpc.frame_error_deg if acpc.frame_error_deg is not None else \
        off_perpendicular_deg(fitted["MSP"].fit.normal, acpc.fit.normal)
    out = []
    for key, found in fitted.items():
        confidence = plane_confidence(found.fit, frame_error, found.mirror_match)
        status = "OK" if confidence >= OK_CONFIDENCE else \
            "LOW_CONFIDENCE" if confidence >= LOW_CONFIDENCE else "FAILED"
        out.append({"key": key, **plane_json(found.plane), "confidence": round(confidence, 4),
                    "status": status})
    return out
