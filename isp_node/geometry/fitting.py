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

import numba
import numpy as np

from isp_node.geometry.planes import unit

MIN_VOTES = 10
MAX_CONDITION = 1e12  # of the normal equations: beyond it the votes lie on a line or a point
# a round that moves the solution (normal before normalising, offset in mm) less than this
# ends the re-weighting: further rounds would change the plane by under 0.001 degree and mm
CONVERGED = 1e-5


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
    points = np.ascontiguousarray(points, dtype=float).reshape(-1, 3)
    distances = np.ascontiguousarray(distances, dtype=float).ravel()
    prior = np.ones(len(points)) if weights is None else np.ascontiguousarray(weights, dtype=float).ravel()
    if np.count_nonzero(prior > 0) < MIN_VOTES:
        raise ValueError(f"too few votes to fit a plane ({np.count_nonzero(prior > 0)})")
    centre = prior @ points / prior.sum()  # conditioning: solve about the votes' centre
    # the plane as (n, c) with n . (x - centre) - c = d, started from `start` or all votes
    begin = np.zeros(4) if start is None else np.append(start.normal, start.offset - centre @ start.normal)
    solution, residual, weight, status = _reweighted_least_squares(
        points, centre, distances, prior, begin, start is not None, cutoff_mm, iterations, MAX_CONDITION,
        MIN_VOTES)
    if status:
        raise ValueError("the votes do not span a plane" if status == 1 else "too few votes agree on a plane")
    gradient = float(np.linalg.norm(solution[:3]))
    normal = solution[:3] / gradient
    kept = weight > 0
    rms = float(np.sqrt(np.average(residual[kept] ** 2, weights=weight[kept])))
    return PlaneFit(normal=unit(normal), offset=float(solution[3] / gradient + centre @ normal),
                    residual_mm=rms, support=float(weight.sum()), gradient=gradient)


@numba.njit(cache=True, nogil=True)
def _reweighted_least_squares(points, centre, distances, prior, solution, started, cutoff,
                              iterations, max_condition, min_votes):
    """Iteratively reweighted least squares with Tukey's biweight (1 for no residual,
    falling to 0 at `cutoff`); the first weights from `solution` when `started`. Returns
    the solution, the last residuals and weights, and a status: 0 fitted, 1 the votes
    span no plane, 2 too few votes agree. One pass over the votes per step, no copies."""
    count = len(distances)
    residual = np.zeros(count)
    weight = prior.copy()
    design = np.empty(4)
    for step in range(iterations + 1):
        if step > 0 or started:
            agreeing = 0
            for i in range(count):
                r = -solution[3] - distances[i]
                for a in range(3):
                    r += (points[i, a] - centre[a]) * solution[a]
                residual[i] = r
                x = 1.0 - (r / cutoff) ** 2
                weight[i] = prior[i] * x * x if x > 0.0 else 0.0
                agreeing += weight[i] != 0.0
            if step > 0 and agreeing < min_votes:
                return solution, residual, weight, 2
        if step == iterations:
            break
        # the weighted normal equations: 4 unknowns, thousands of votes
        matrix = np.zeros((4, 4))
        rhs = np.zeros(4)
        for i in range(count):
            w = weight[i]
            if w == 0.0:
                continue
            for a in range(3):
                design[a] = points[i, a] - centre[a]
            design[3] = -1.0
            for r in range(4):
                wr = w * design[r]
                rhs[r] += wr * distances[i]
                for c in range(r, 4):
                    matrix[r, c] += wr * design[c]
        for r in range(4):
            for c in range(r):
                matrix[r, c] = matrix[c, r]
        if np.linalg.cond(matrix) > max_condition:
            return solution, residual, weight, 1
        previous = solution
        solution = np.linalg.solve(matrix, rhs)
        if np.max(np.abs(solution - previous)) < CONVERGED:
            iterations = step + 1  # converged: the weights of this solution, then done
    return solution, residual, weight, 0


def weighted_centres(heat: np.ndarray, origin: np.ndarray, spacing: float,
                     fraction: float = 0.5) -> np.ndarray:
    """Centres (K, 3) of the heat blobs of K maps (X, Y, Z, K) on the regular grid
    ``origin + spacing * (i, j, k)``: each the heat-weighted mean of the points whose heat
    is at least `fraction` of its map's peak (sub-voxel, and blind to faint heat
    elsewhere); NaN where a map is all zero. All maps in one pass over the array."""
    heat = np.asarray(heat)
    peaks = heat.max(axis=(0, 1, 2), initial=0.0)
    *at, channel = np.nonzero((heat >= fraction * peaks) & (peaks > 0))
    weights = heat[(*at, channel)].astype(float)
    total = np.bincount(channel, weights, minlength=heat.shape[-1])
    sums = np.stack([np.bincount(channel, weights * index, minlength=heat.shape[-1])
                     for index in at], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.asarray(origin, dtype=float) + spacing * sums / total[:, None]
    centres[peaks <= 0] = np.nan
    return centres
