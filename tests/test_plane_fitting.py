"""Robust plane fitting to distance votes, against planes known by construction."""

import numpy as np
import pytest

from isp_node.geometry.fitting import fit_distance_votes, weighted_centres
from isp_node.geometry.rotations import head_rotation


def votes(normal: np.ndarray, offset: float, rng: np.random.Generator, n: int = 4000,
          noise_mm: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Points within 30 mm of the plane and their signed distances, with noise."""
    points = rng.uniform(-80, 80, (n, 3))
    points -= ((points @ normal - offset) - rng.uniform(-30, 30, n))[:, None] * normal
    return points, points @ normal - offset + rng.normal(0, noise_mm, n)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b, -1, 1))))


def test_recovers_an_oblique_plane_through_noise():
    rng = np.random.default_rng(0)
    normal = head_rotation(17, -8, 23) @ np.array([0.0, 0.0, 1.0])
    points, distances = votes(normal, 12.5, rng)
    fit = fit_distance_votes(points, distances)
    assert angle_deg(fit.normal, normal) < 0.1
    assert fit.offset == pytest.approx(12.5, abs=0.1)
    assert fit.residual_mm == pytest.approx(1.5, rel=0.15)
    assert fit.gradient == pytest.approx(1.0, abs=0.01)


def test_a_fifth_of_wrong_votes_does_not_tilt_the_plane():
    rng = np.random.default_rng(1)
    normal = np.array([1.0, 0.0, 0.0])
    points, distances = votes(normal, -3.0, rng)
    wrong = rng.random(len(points)) < 0.2
    distances[wrong] += rng.uniform(15, 40, wrong.sum()) * rng.choice([-1, 1], wrong.sum())
    plain = fit_distance_votes(points, distances, iterations=1, cutoff_mm=1e9)
    robust = fit_distance_votes(points, distances)
    assert angle_deg(robust.normal, normal) < 0.2 and abs(robust.offset + 3.0) < 0.2
    assert robust.support < 0.85 * len(points)  # the wrong votes were let go
    assert angle_deg(plain.normal, normal) + abs(plain.offset + 3.0) > \
        3 * (angle_deg(robust.normal, normal) + abs(robust.offset + 3.0))


def test_fit_follows_a_rigid_transform_and_honours_weights():
    rng = np.random.default_rng(2)
    normal = np.array([0.0, 0.6, 0.8])
    points, distances = votes(normal, 5.0, rng, noise_mm=0.5)
    rotation = head_rotation(-20, 10, 5)
    shift = np.array([30.0, -12.0, 44.0])
    fit = fit_distance_votes(points, distances)
    moved = fit_distance_votes(points @ rotation.T + shift, distances)
    assert angle_deg(moved.normal, rotation @ fit.normal) < 1e-6
    assert moved.offset == pytest.approx(fit.offset + (rotation @ fit.normal) @ shift, abs=1e-6)
    weights = np.where(points[:, 0] > 0, 1.0, 0.0)  # votes with no weight do not count
    distances_bad = np.where(weights > 0, distances, distances + 50)
    assert angle_deg(fit_distance_votes(points, distances_bad, weights).normal, normal) < 0.2


def test_refuses_too_few_or_degenerate_votes():
    with pytest.raises(ValueError, match="too few"):
        fit_distance_votes(np.zeros((5, 3)), np.zeros(5))
    line = np.column_stack([np.arange(50.0), np.zeros(50), np.zeros(50)])
    with pytest.raises(ValueError, match="span"):
        fit_distance_votes(line, np.zeros(50))


def test_weighted_centres_of_blobs():
    axis = np.arange(-20.0, 21.0, 2.0)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    centres = np.array([[3.3, -1.7, 0.9], [-6.2, 4.4, 10.1]])
    heat = np.stack([np.exp(-((grid - c) ** 2).sum(axis=-1) / (2 * 4.0**2)) for c in centres]
                    + [np.zeros(grid.shape[:3])], axis=-1)
    heat[0, 0, 0, 0] = 0.4  # a faint spot far away is ignored
    heat[..., 1] *= 0.3  # each map against its own peak
    found = weighted_centres(heat, grid[0, 0, 0], 2.0)
    np.testing.assert_allclose(found[:2], centres, atol=0.3)
    np.testing.assert_allclose(weighted_centres(heat, grid[0, 0, 0] + 5.0, 2.0)[:2], centres + 5.0,
                               atol=0.3)
    assert np.isnan(found[2]).all()  # a map without heat has no centre
    for k in range(2):  # the heat-weighted mean of the points over half the map's peak
        near = heat[..., k] >= 0.5 * heat[..., k].max()
        expected = np.average(grid[near], axis=0, weights=heat[..., k][near])
        np.testing.assert_allclose(found[k], expected, atol=1e-9)
