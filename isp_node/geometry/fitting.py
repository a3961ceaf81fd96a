"""Planes fitted to votes: robust weighted least squares in patient space (LPS, mm).

A network that predicts, at many voxels near a target plane, the signed distance
(mm) from the voxel to that plane gives one vote per voxel. A plane ``n . x = c``
explains the votes when ``n . x - c = d`` at every voxel; with ``n`` left free
(not forced to unit length) this is linear least squares in ``(n, c)``, solved
with the votes' weights and then re-weighted a few times (Tukey's biweight on
the residuals), so that a minority of wrong votes (an artifact, a lesion, a gap
between slices) cannot tilt the plane. Thousands of voxels vote, so the plane is
found far more finely than the voxel size.
"""

from dataclasses import dataclass

import numpy as np

from isp_node.geometry.planes import unit

MIN_VOTES = 10
MAX_CONDITION = 1e12  # of the normal equations: beyond it the votes lie on a line or a point


@dataclass(frozen=True)
class PlaneFit:
    """A plane ``normal . x = offset`` fitted to distance votes, with how well they agreed."""

    normal: np.ndarray  # (3,) unit; points the way the votes' distances grow
    offset: float  # mm
    residual_mm: float  # weighted RMS residual of the votes kept at the end
    support: float  # sum of the final weights: how many votes, in effect, agreed
    gradient: float  # |n| before normalising: 1 when the votes form a true distance field

    def point(self) -> np.ndarray:
        """The point of the plane nearest the origin."""
        return self.normal * self.offset

    def project(self, point: np.ndarray) -> np.ndarray:
        """`point` moved along the normal onto the plane."""
        point = np.asarray(point, dtype=float)
        return point - (point @ self.normal - self.offset) * self.normal


def fit_distance_votes(points: np.ndarray, distances: np.ndarray, weights: np.ndarray | None = None,
                       cutoff_mm: float = 6.0, iterations: int = 6,
                       start: PlaneFit | None = None) -> PlaneFit:
    """The plane whose signed distance best explains `distances` (N,) at `points` (N, 3).

    Votes whose residual exceeds `cutoff_mm` get no weight in the next round; with a
    `start` plane (e.g. fitted to the most trusted votes) that holds from the first
    round. Raises ValueError when too few votes carry weight or they span no plane.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    distances = np.asarray(distances, dtype=float).ravel()
    prior = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=float).ravel()
    if np.count_nonzero(prior > 0) < MIN_VOTES:
        raise ValueError(f"too few votes to fit a plane ({np.count_nonzero(prior > 0)})")
    centre = np.average(points, axis=0, weights=prior)  # conditioning: solve about the votes' centre
    design = np.column_stack([points - centre, -np.ones(len(points))])
    weight = prior if start is None else \
        prior * _biweight(points @ start.normal - start.offset - distances, cutoff_mm)
    for _ in range(iterations):
        # the weighted normal equations: 4 unknowns, thousands of votes
        weighted = design.T * weight
        normal_matrix = weighted @ design
        if np.linalg.cond(normal_matrix) > MAX_CONDITION:
            raise ValueError("the votes do not span a plane")
        solution = np.linalg.solve(normal_matrix, weighted @ distances)
        residual = design @ solution - distances
        weight = prior * _biweight(residual, cutoff_mm)
        if np.count_nonzero(weight) < MIN_VOTES:
            raise ValueError("too few votes agree on a plane")
    gradient = float(np.linalg.norm(solution[:3]))
    normal = solution[:3] / gradient
    kept = weight > 0
    rms = float(np.sqrt(np.average(residual[kept] ** 2, weights=weight[kept])))
    return PlaneFit(normal=unit(normal), offset=float(solution[3] / gradient + centre @ normal),
                    residual_mm=rms, support=float(weight.sum()), gradient=gradient)


def _biweight(residual: np.ndarray, cutoff: float) -> np.ndarray:
    """Tukey's biweight: 1 for no residual, falling to 0 at `cutoff` and beyond."""
    return np.clip(1 - (residual / cutoff) ** 2, 0, None) ** 2


def weighted_centre(points: np.ndarray, heat: np.ndarray, fraction: float = 0.5) -> np.ndarray | None:
    """Centre of a heat blob: the heat-weighted mean of the points whose heat is at least
    `fraction` of the peak (sub-voxel, and blind to faint heat elsewhere). None if all zero."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    heat = np.asarray(heat, dtype=float).ravel()
    peak = heat.max(initial=0.0)
    if peak <= 0:
        return None
    near = heat >= fraction * peak
    return np.average(points[near], axis=0, weights=heat[near])
