"""The cascade's pieces that need no trained weights: verdicts, model shapes, training
resume, brain summaries."""

import itertools
import json

import numpy as np
import pytest

from isp_node.cascade.verdict import localizer_verdict
from isp_node.pipeline.volume import Grid


def test_verdicts_and_messages():
    usable = localizer_verdict(["anatomy"] * 6, ["sagittal"] * 2 + ["coronal"] * 2 + ["axial"] * 2,
                               1100.0)
    assert usable.usable and usable.counts == {"anatomy": 6, "artifact": 0, "irrelevant": 0}
    noisy = localizer_verdict(["artifact"] * 5 + ["anatomy"], ["axial"] * 6, 900.0)
    assert not noisy.usable and "keep still" in noisy.message
    empty = localizer_verdict(["irrelevant"] * 6, ["axial"] * 6, 0.0)
    assert not empty.usable and "no brain" in empty.message
    uncovered = localizer_verdict(["anatomy"] * 4, ["axial"] * 4, 120.0)
    assert not uncovered.usable and "not covered" in uncovered.message
    one_plane = localizer_verdict(["anatomy", "anatomy", "irrelevant", "irrelevant"],
                                  ["axial", "axial", "sagittal", "sagittal"], 900.0)
    assert not one_plane.usable and "sagittal" in one_plane.message


def test_brain_summary_in_patient_coordinates():
    from isp_node.cascade.brain import brain_summary

    grid = Grid.centred(np.zeros(3), (10, 10, 10), 4.0)
    brain = np.zeros((10, 10, 10), bool)
    brain[2:5, 3:7, 1:9] = True
    summary = brain_summary(brain, grid)
    assert summary["volume_ml"] == pytest.approx(3 * 4 * 8 * 0.064, abs=0.05)
    np.testing.assert_allclose(summary["low_lps"], grid.origin + (np.array([2, 3, 1]) - 0.5) * 4)
    np.testing.assert_allclose(summary["high_lps"], grid.origin + (np.array([4, 6, 8]) + 0.5) * 4)


def test_brain_points_are_the_voxel_centres_over_the_threshold():
    from isp_node.cascade.brain import brain_points

    grid = Grid.centred(np.zeros(3), (10, 10, 10), 4.0)
    probability = np.zeros((10, 10, 10))
    probability[2, 3, 4], probability[5, 5, 5] = 0.4, 0.3
    np.testing.assert_allclose(brain_points(probability, grid, 0.35), [grid.origin + [8, 12, 16]])
    assert len(brain_points(probability, grid, 0.25)) == 2 and not len(brain_points(probability, grid, 0.5))


def test_a_brain_reaching_past_every_image_runs_off_on_that_side():
    """Two axial images 200 x 160 mm about the origin, 20 mm apart: a brain reaching 5 mm
    past their front edge and 30 mm above the upper one runs off anteriorly and superiorly;
    one 3 mm past any edge does not (`RUN_OFF_MM`, 4 mm)."""
    from isp_node.cascade.brain import images_box, run_off_sides

    frames = np.array([[-100, -80, z, 1, 0, 0, 0, 1, 0, 200, 160] for z in (-10, 10)], float)
    np.testing.assert_allclose(images_box(frames), [[-100, -80, -10], [100, 80, 10]])
    brain = {"low_lps": [-90, -85, -12], "high_lps": [90, 83, 40]}
    assert run_off_sides(brain, frames) == ["anterior", "superior"]
    assert run_off_sides({"low_lps": [-103, -83, -13], "high_lps": [103, 83, 13]}, frames) == []
    assert run_off_sides({"volume_ml": 0.0}, frames) == []
    verdict = localizer_verdict(["anatomy"] * 3, ["axial"] * 3, 1200.0, ["anterior", "superior"])
    assert verdict.usable and "runs beyond its images on the anterior and superior sides" in \
        verdict.message
    assert localizer_verdict(["anatomy"] * 3, ["axial"] * 3, 1200.0).message == "localizer usable"


def test_image_brain_area_from_the_map_on_the_image_plane():
    """An 82 mm cube of brain, its faces between the 4 mm map's voxels: an image through it
    shows 82 x 82 mm (averaged over where its samples fall: whole voxels would make it 80),
    one tilted by 17 degrees 82 x 85.7 mm, one above it or off the grid nothing."""
    from isp_node.cascade.brain import image_brain_mm2
    from isp_node.pipeline.slices import ImageSlice

    grid = Grid.centred(np.zeros(3), (64, 64, 64), 4.0)
    # the map falls from 1 to 0 across 16 mm, through 0.5 at 41 mm from the centre
    cube = np.clip(0.5 + (41.0 - np.abs(grid.points()).max(axis=-1)) / 16.0, 0.0, 1.0)

    def image(position, row=(1.0, 0.0, 0.0)):
        return ImageSlice(np.zeros((256, 256), np.float32), np.asarray(position, float), row,
                          (0.0, 1.0, 0.0), (1.0, 1.0), 5.0).frame

    tilt = np.radians(17.0)
    tilted = np.array([np.cos(tilt), 0.0, np.sin(tilt)])
    # the image moved by 0-3.5 mm along its rows and columns: its samples fall anywhere
    # between the map's voxel centres
    shifts = list(itertools.product(np.arange(8) * 0.5, repeat=2))
    straight = [image((-127.5 + a, -127.5 + b, 0.0)) for a, b in shifts]
    oblique = [image(-127.5 * tilted + (0.0, -127.5, 0.0) + a * tilted + (0.0, b, 0.0), tilted)
               for a, b in shifts]
    frames = np.stack([*straight, *oblique, image((-127.5, -127.5, 60.0)),
                       image((-127.5, -127.5, 400.0))])
    areas = image_brain_mm2(cube, grid, frames)
    assert areas[:64].mean() == pytest.approx(82 * 82, rel=0.01)
    assert areas[64:128].mean() == pytest.approx(82 * 82 / np.cos(tilt), rel=0.03)
    assert areas[128] == 0 and areas[129] == 0
    assert not image_brain_mm2(np.zeros_like(cube), grid, frames).any()


def test_image_classes_follow_the_map_where_it_is_clear():
    """Under 600 mm2 of mapped brain an image is irrelevant; over 1500 mm2 it shows brain
    (anatomy or artifact, as the network prefers) if the network sees anatomy anywhere in
    the localizer; in between the network decides."""
    from isp_node.cascade.models import IQ_CLASSES
    from isp_node.cascade.verdict import image_classes

    probabilities = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.05, 0.15, 0.8],
                              [0.25, 0.15, 0.6], [0.02, 0.03, 0.95], [0.6, 0.1, 0.3]])
    areas = np.array([900.0, 500.0, 0.0, 5000.0, 1200.0, 1600.0, 700.0])
    classes = [IQ_CLASSES[c] for c in image_classes(probabilities, areas)]
    assert classes == ["anatomy", "irrelevant", "irrelevant", "artifact", "irrelevant",
                       "artifact", "anatomy"]
    # other areas, as docs/image_class_thresholds.py tries them
    classes = [IQ_CLASSES[c] for c in image_classes(probabilities, areas, 400.0, 1100.0)]
    assert classes == ["anatomy", "artifact", "irrelevant", "artifact", "anatomy",
                       "artifact", "anatomy"]
    # no image the network calls anatomy (a noise-only localizer the map draws a brain in)
    classes = [IQ_CLASSES[c] for c in image_classes(probabilities[1:6], areas[1:6])]
    assert classes == ["irrelevant", "irrelevant", "irrelevant", "irrelevant", "irrelevant"]


def test_brain_extent_is_sub_voxel():
    """A ball whose probability falls linearly through 0.5 at radius 37.3 mm (not on a
    voxel boundary) is measured to within a hundredth of a millimetre, and a map read at
    Coverage-Net's lower extent threshold reaches as far further as the slope says."""
    from isp_node.cascade.brain import MAP_EXTENT_THRESHOLD, brain_extent, brain_summary

    grid = Grid.centred(np.array([10.0, -20.0, 5.0]), (32, 32, 32), 4.0)
    centre = grid.origin + 4.0 * np.array([15, 16, 14])
    radius = np.linalg.norm(grid.points() - centre, axis=-1)
    probability = np.clip(0.5 - (radius - 37.3) / 8.0, 0, 1)
    summary = brain_summary(probability, grid)
    np.testing.assert_allclose(summary["low_lps"], centre - 37.3, atol=0.01)
    np.testing.assert_allclose(summary["high_lps"], centre + 37.3, atol=0.01)
    # Coverage-Net's extent is read lower down the same slope, 8 mm per unit of probability
    reach = 37.3 + 8.0 * (0.5 - MAP_EXTENT_THRESHOLD)
    mapped = brain_summary(probability, grid, MAP_EXTENT_THRESHOLD)
    np.testing.assert_allclose(mapped["low_lps"], centre - reach, atol=0.01)
    np.testing.assert_allclose(mapped["high_lps"], centre + reach, atol=0.01)
    assert mapped["volume_ml"] == summary["volume_ml"] and mapped["centre_lps"] == summary["centre_lps"]
    assert brain_extent(np.full((4, 4, 4), 0.4), MAP_EXTENT_THRESHOLD) is None  # no 0.5: no brain
    assert brain_extent(np.zeros((4, 4, 4))) is None
    edge = np.zeros((4, 4, 4))
    edge[0, 1, 1] = 1.0  # a brain running off the grid ends at the grid's edge
    assert brain_extent(edge)[0][0] == -0.5


def test_model_shapes():
    from isp_node.cascade.models import build_coverage_net, build_iq_net

    iq = build_iq_net()
    assert iq(np.zeros((2, 64, 64, 1), np.float32)).shape == (2, 3)
    coverage = build_coverage_net(shape=(32, 32, 32))
    assert coverage(np.zeros((1, 32, 32, 32, 2), np.float32)).shape == (1, 32, 32, 32, 1)


def test_folded_batch_norm_computes_the_same():
    """Inference folds each batch normalisation into its convolution; the function stays."""
    from isp_node.cascade.inference import fold_batch_norm
    from isp_node.cascade.models import build_coverage_net, build_iq_net
    from isp_node.cascade.runtime import keras

    rng = np.random.default_rng(3)
    for model, shape in ((build_iq_net(), (4, 64, 64, 1)),
                         (build_coverage_net((16, 16, 16)), (1, 16, 16, 16, 2))):
        for layer in model.layers:  # trained-looking statistics, not the identity
            if isinstance(layer, keras().layers.BatchNormalization):
                n = layer.gamma.shape[0]
                layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
                                   rng.uniform(0.2, 3, n)])
        folded = fold_batch_norm(model)
        assert not any(isinstance(layer, keras().layers.BatchNormalization) for layer in folded.layers)
        x = rng.random(shape).astype(np.float32)
        np.testing.assert_allclose(folded(x, training=False), model(x, training=False), atol=2e-5)


def test_several_warm_functions_do_not_warn_of_retracing(caplog):
    """The node and its evaluation hold several warm networks, each traced once: that is
    not a function retraced, and TensorFlow must not log it as one."""
    import logging

    from isp_node.cascade.inference import warm_function
    from isp_node.cascade.models import build_iq_net

    model = build_iq_net()
    x = np.zeros((2, 64, 64, 1), np.float32)
    with caplog.at_level(logging.WARNING):
        outputs = [warm_function(model)(x) for _ in range(7)]
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    np.testing.assert_allclose(outputs[-1], model(x, training=False), atol=2e-5)


def test_random_intensity_curves_keep_the_order_of_tissues():
    from isp_node.cascade.training import random_intensity_curve

    rng = np.random.default_rng(5)
    values = np.linspace(0.0, 2.0, 201, dtype=np.float32)
    curves = [random_intensity_curve(rng)(values) for _ in range(20)]
    for mapped in curves:
        assert mapped[0] == 0 and np.all(np.diff(mapped) >= 0)
        np.testing.assert_allclose(mapped[values >= 1.5], values[values >= 1.5], rtol=1e-6)
    assert np.ptp([mapped[50] for mapped in curves]) > 0.2  # mid-grey goes darker or brighter


def test_training_checkpoints_and_resumes(tmp_path):
    from isp_node.cascade.datasets import FORMAT
    from isp_node.cascade.training import Recipe, train

    rng = np.random.default_rng(0)
    data = [tmp_path / "fast", tmp_path / "full_resolution"]  # shards from two data sets
    for directory in data:
        directory.mkdir()
        np.savez_compressed(directory / f"shard_v{FORMAT}_00000000_4.npz",
                            images=rng.random((40, 64, 64)).astype(np.float16),
                            labels=rng.integers(0, 3, 40).astype(np.int8),
                            owners=np.repeat(np.arange(4), 10), seeds=np.arange(4),
                            brain_mm2=rng.uniform(0, 5000, 40).astype(np.float32))
    recipe = Recipe("iq", steps=4, batch=8, learning_rate=1e-3, checkpoint_every=2)
    _, state = train(recipe, data, tmp_path / "work", progress=False)
    assert state["step"] == 4 and len(state["losses"]) == 2 and state["samples"] == 80
    longer = Recipe("iq", steps=4, batch=8, learning_rate=1e-3, checkpoint_every=2)
    _, again = train(longer, data, tmp_path / "work", progress=False)
    assert again["step"] == 4  # nothing left to do: resumed at the end
    saved = json.loads((tmp_path / "work" / "state.json").read_text())
    assert saved["recipe"]["task"] == "iq"
    with pytest.raises(ValueError, match="another recipe"):
        train(Recipe("iq", steps=6, batch=8, learning_rate=1e-3, checkpoint_every=2),
              data, tmp_path / "work", progress=False)


def test_orientation_training_runs_on_a_shard(tmp_path):
    """Two steps of Orientation-Net on a tiny shard: targets made from the stored planes
    on each case's own grid, the loss finite, the checkpoint written."""
    from isp_node.cascade.datasets import FORMAT
    from isp_node.cascade.orientation import ORIENTATION_SHAPE
    from isp_node.cascade.training import Recipe, train
    from isp_node.geometry import PLANE_KEYS

    rng = np.random.default_rng(0)
    planes = np.zeros((3, len(PLANE_KEYS), 2, 3), np.float32)
    planes[:, :, 1] = [0.0, 0.0, 1.0]
    planes[:, 0, 1] = [1.0, 0.0, 0.0]
    grids = np.array([[-96, -96, -96, 3.0], [-80, -90, -100, 2.8], [np.nan] * 4], np.float32)
    np.savez_compressed(tmp_path / f"shard_v{FORMAT}_00000000_3.npz", seeds=np.arange(3),
                        orientation_volumes=rng.random((3, *ORIENTATION_SHAPE, 2)).astype(np.float16),
                        orientation_grids=grids, planes=planes)
    recipe = Recipe("orientation", steps=2, batch=2, learning_rate=1e-3, checkpoint_every=2)
    model, state = train(recipe, [tmp_path], tmp_path / "work", progress=False)
    assert state["step"] == 2 and state["samples"] == 2  # the case without a brain is left out
    assert np.isfinite(state["losses"][-1][1])
    assert model.output_shape == (None, *ORIENTATION_SHAPE, 2 * len(PLANE_KEYS))
    # a new run can start from those weights: it begins where the first ended
    model.save(tmp_path / "first.keras")
    again, state = train(Recipe("orientation", steps=1, batch=2, learning_rate=0.0,
                                start_from=str(tmp_path / "first.keras")),
                         [tmp_path], tmp_path / "again", progress=False)
    assert len(state["start_from_sha256"]) == 64
    for before, after in zip(model.get_weights(), again.get_weights()):
        if before.ndim > 1:  # kernels (batch-norm statistics move even at rate 0)
            np.testing.assert_array_equal(before, after)


def test_fine_sample_in_the_head_frame_shows_the_head_nearly_upright():
    """In the head frame the fine grid is turned with the head: the true planes are given in
    it, the MSP and ACPC normals within a few degrees (the first stage's error) of Left and
    Superior, and the input is the same localizer turned with them."""
    from isp_node.simulation.tensors import FRAME_JITTER_DEG, fine_sample

    options = dict(heads=("mni",), unusable_fraction=0.0)
    turned, planes, points = fine_sample(8, head_frame=True, **options)
    scanner, scanner_planes, scanner_points = fine_sample(8, **options)
    for plane, landmarks in ((planes, points), (scanner_planes, scanner_points)):
        np.testing.assert_allclose(landmarks[:2].mean(axis=0), plane["ACPC"].centre, atol=1e-6)
    np.testing.assert_allclose(turned.grid.origin, scanner.grid.origin)  # same centre
    tilt = [np.degrees(np.arccos(abs(planes[key].normal @ axis)))
            for key, axis in (("MSP", [1, 0, 0]), ("ACPC", [0, 0, 1]))]
    assert max(tilt) < 4 * max(FRAME_JITTER_DEG)
    assert np.degrees(np.arccos(abs(scanner_planes["MSP"].normal[0]))) > 2 * max(tilt)  # turned by 17 degrees
    centre = turned.grid.centre  # the turn is about the grid's centre
    assert abs(np.linalg.norm(planes["ACPC"].centre - centre)
               - np.linalg.norm(scanner_planes["ACPC"].centre - centre)) < 1e-6


def test_fine_stage_learns_on_shards_of_its_own_grid(tmp_path):
    """Fine shards hold the localizer on the 1.5 mm grid about the true AC-PC midpoint
    (jittered), turned into the head frame, and the true planes and midline landmarks in that
    frame; the fine stage trains on them, with its landmark head or without."""
    from isp_node.cascade.datasets import DatasetSpec, load_shards, make_dataset
    from isp_node.cascade.orientation import FINE_SHAPE, FINE_SPACING_MM
    from isp_node.cascade.training import Recipe, train
    from isp_node.geometry import PLANE_KEYS

    paths = make_dataset(tmp_path / "fine", DatasetSpec(first_seed=40, count=2, heads=("mni",),
                                                        unusable_fraction=0.0, fine=True,
                                                        head_frame=True),
                         processes=1, progress=False)
    data = load_shards(paths, ("fine_volumes", "fine_grids", "planes", "landmarks"))
    assert data["fine_volumes"].shape == (2, *FINE_SHAPE, 2)
    assert data["landmarks"].shape == (2, 10, 3)  # AC and PC first: their midpoint centres ACPC
    np.testing.assert_allclose(data["landmarks"][:, :2].mean(axis=1),
                               data["planes"][:, PLANE_KEYS.index("ACPC"), 0], atol=1e-3)
    assert np.all(data["fine_grids"][:, 3] == FINE_SPACING_MM)
    centres = data["fine_grids"][:, :3] + FINE_SPACING_MM * (np.array(FINE_SHAPE) - 1) / 2
    off = np.linalg.norm(centres - data["planes"][:, PLANE_KEYS.index("ACPC"), 0], axis=1)
    assert np.all(off > 0) and np.all(off < 25)  # jittered about the true AC-PC midpoint
    assert data["fine_volumes"][..., 1].mean() > 0.2  # the localizer's slices cross it
    model, state = train(Recipe("fine", steps=1, batch=2, learning_rate=1e-3), [tmp_path / "fine"],
                         tmp_path / "work", progress=False)
    assert model.output_shape == (None, *FINE_SHAPE, 2 * len(PLANE_KEYS))
    assert np.isfinite(state["losses"][-1][1])
    model.save(tmp_path / "plain.keras")
    pointing, state = train(Recipe("fine", steps=1, batch=2, learning_rate=0.0, landmark_weight=0.02,
                                   start_from=str(tmp_path / "plain.keras")),
                            [tmp_path / "fine"], tmp_path / "work_landmarks", progress=False)
    assert pointing.output_shape == [(None, *FINE_SHAPE, 2 * len(PLANE_KEYS)), (None, *FINE_SHAPE, 10)]
    assert np.isfinite(state["losses"][-1][1])
    np.testing.assert_array_equal(pointing.get_layer("distance").get_weights()[0],
                                  model.get_layer("distance").get_weights()[0])  # started from it
    # mirrored samples: the input flipped left-right, the targets those of the mirrored planes
    from isp_node.cascade.orientation import landmark_targets, mirrored_plane_array, plane_targets
    from isp_node.cascade.training import Batches
    from isp_node.pipeline.volume import Grid

    batches = Batches(Recipe("fine", steps=1, batch=1, learning_rate=1e-3, mirror=True,
                             landmark_weight=0.02), paths)
    grids = [Grid(FINE_SHAPE, FINE_SPACING_MM, g[:3]) for g in data["fine_grids"]]
    targets = {(i, flip): plane_targets(grid, mirrored_plane_array(planes, float(grid.centre[0]))
                                        if flip else planes).stacked()
               for i, (grid, planes) in enumerate(zip(grids, data["planes"])) for flip in (False, True)}
    images = data["fine_volumes"][..., 0].astype(np.float32)
    seen = set()
    for step in range(12):
        x, y, _ = batches.batch(step)
        (i, flipped), = [case for case, target in targets.items() if np.allclose(y[0][0], target, atol=1e-6)]
        points = data["landmarks"][i].copy()
        if flipped:  # midline points: mirrored, none changes sides
            points[:, 0] = 2 * grids[i].centre[0] - points[:, 0]
        np.testing.assert_allclose(y[1][0], landmark_targets(grids[i], points), atol=1e-6)
        # the input is the same case, mirrored with its targets (intensities remapped, ranks kept)
        same, other = (np.corrcoef(x[0, ..., 0].ravel(), image.ravel())[0, 1]
                       for image in ((images[i, ::-1], images[i]) if flipped else (images[i], images[i, ::-1])))
        assert same > 0.8 and other < same - 0.15  # an upright head is nearly its own mirror image
        seen.add(flipped)
    assert seen == {True, False}


def test_commissure_look_learns_ac_and_pc_on_its_1_mm_grid(tmp_path):
    """The commissure look's shards hold the localizer on 48 voxels of 1 mm about the true
    AC-PC midpoint (jittered less than the fine stage's), in the head frame; it trains from
    the fine stage's weights (its plane maps left out) on the landmarks alone."""
    from isp_node.cascade.datasets import DatasetSpec, load_shards, make_dataset
    from isp_node.cascade.orientation import (
        COMMISSURE_SHAPE, COMMISSURE_SIGMA_MM, COMMISSURE_SPACING_MM, landmark_targets)
    from isp_node.cascade.training import Batches, Recipe, train
    from isp_node.geometry import PLANE_KEYS
    from isp_node.pipeline.volume import Grid

    paths = make_dataset(tmp_path / "commissures", DatasetSpec(
        first_seed=40, count=2, heads=("mni",), unusable_fraction=0.0, fine=True,
        commissures=True), processes=1, progress=False)
    data = load_shards(paths, ("fine_volumes", "fine_grids", "planes", "landmarks"))
    assert data["fine_volumes"].shape == (2, *COMMISSURE_SHAPE, 2)
    assert np.all(data["fine_grids"][:, 3] == COMMISSURE_SPACING_MM)
    grids = [Grid(COMMISSURE_SHAPE, COMMISSURE_SPACING_MM, g[:3]) for g in data["fine_grids"]]
    centres = np.stack([grid.centre for grid in grids])
    off = np.linalg.norm(centres - data["planes"][:, PLANE_KEYS.index("ACPC"), 0], axis=1)
    assert np.all(off > 0) and np.all(off < 12)
    # in the head frame, nearly upright: AC in front of PC, both inside the grid
    ac, pc = data["landmarks"][:, 0], data["landmarks"][:, 1]
    assert np.all(pc[:, 1] - ac[:, 1] > 20) and np.all(np.abs(pc[:, 2] - ac[:, 2]) < 5)
    assert all(np.all(np.abs(points - grid.centre) < 24) for grid, points in
               zip(grids, data["landmarks"][:, :2]))
    fine = build_fine_for_start(tmp_path)
    model, state = train(Recipe("commissures", steps=1, batch=2, learning_rate=1e-3,
                                start_from=str(fine)), [tmp_path / "commissures"],
                         tmp_path / "work", progress=False)
    assert model.output_shape == (None, *COMMISSURE_SHAPE, 10)
    assert np.isfinite(state["losses"][-1][1])
    x, y, _ = Batches(Recipe("commissures", steps=1, batch=1, learning_rate=1e-3), paths).batch(0)
    i = int(np.argmin([np.abs(x[0, ..., 1] - v[..., 1]).max() for v in data["fine_volumes"]]))
    np.testing.assert_allclose(y[0], landmark_targets(grids[i], data["landmarks"][i],
                                                      COMMISSURE_SIGMA_MM), atol=1e-6)


def build_fine_for_start(tmp_path):
    """An untrained fine stage with its landmark head, saved: what the commissure look starts from."""
    from isp_node.cascade.models import build_orientation_net
    from isp_node.cascade.orientation import FINE_SHAPE
    from isp_node.geometry import PLANE_KEYS

    path = tmp_path / "fine.keras"
    build_orientation_net(len(PLANE_KEYS), FINE_SHAPE, landmarks=10).save(path)
    return path


def test_training_data_of_other_heads_go_to_their_own_directory():
    """Shards of one set of heads are never picked up by a training on another: the data
    directory names the heads (MNI alone keeps the plain name); `--heads` is checked."""
    from isp_node import cli

    assert cli.data_directory_name("train", ("mni",)) == "train"
    assert cli.data_directory_name("train", ("mni", "robex")) == "train_mni-robex"
    assert cli.data_directory_name("train", ("mni", "robex"), 3.0) == "train_mni-robex_blur3"
    assert cli.data_directory_name("train", ("mni",), 0.0, 0.03) == "train_swell0.03"
    assert cli.build_parser().parse_args(["train", "iq", "--max-blur", "2.5"]).max_blur == 2.5
    assert cli.TRAIN_HEADS["iq"] == ("mni", "robex", "pycortex") and "coverage" not in cli.TRAIN_HEADS
    args = cli.build_parser().parse_args(["train", "coverage", "--heads", "mni", "robex"])
    assert args.heads == ["mni", "robex"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "iq", "--heads", "colin27"])


def test_more_training_localizers_extend_the_same_data_set():
    """`--localizers` grows the main training set in its own directory (the shards already
    made are reused, new seeds follow them); LocalizerIQ-Net's full-resolution set keeps
    its size."""
    from isp_node import cli

    def data(*argv):
        return cli.training_data(cli.build_parser().parse_args(["train", *argv]))

    default = data("coverage", "--heads", "mni", "robex")
    more = data("coverage", "--heads", "mni", "robex", "--localizers", "4000")
    assert list(default) == list(more) == ["train_mni-robex"]
    assert default["train_mni-robex"]["count"] == cli.TRAIN_DATA["count"] == 2000
    assert more["train_mni-robex"]["count"] == 4000
    assert more["train_mni-robex"]["first_seed"] == default["train_mni-robex"]["first_seed"]
    iq = data("iq", "--localizers", "3000")
    assert iq["train_mni-robex-pycortex"]["count"] == 3000
    assert iq["train_full_resolution_mni-robex-pycortex"]["count"] == \
        cli.TRAIN_DATA_FULL_RESOLUTION["count"]
    assert data("fine", "--localizers", "100")["train_fine_head_frame"]["count"] == 100
