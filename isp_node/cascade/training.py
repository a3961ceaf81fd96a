"""Training of the cascade's networks: fixed seeds, checkpoints, resume, recorded recipe.

`train(recipe, data_dir, work_dir)` trains for `recipe.steps` steps, saving a
checkpoint (model, optimizer state, step) every `checkpoint_every` steps; run
it again with the same recipe and it resumes from the last checkpoint.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from isp_node.cascade import datasets
from isp_node.cascade.models import (
    build_commissure_net, build_coverage_net, build_iq_net, build_orientation_net)
from isp_node.cascade.orientation import (
    COMMISSURE_SHAPE, COMMISSURE_SIGMA_MM, COMMISSURE_SPACING_MM, FINE_LANDMARKS, FINE_SHAPE,
    FINE_SPACING_MM, ORIENTATION_SHAPE, landmark_targets, mirrored_plane_array, plane_targets)
from isp_node.geometry import PLANE_KEYS
from isp_node.pipeline.image_input import normalised
from isp_node.pipeline.volume import Grid
from isp_node.simulation.cases import ANATOMY_MIN_BRAIN_MM2
from isp_node.cascade.runtime import keras, tensorflow


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model, recorded next to it."""

    task: str  # "iq", "coverage", "orientation", "fine" or "commissures"
    steps: int
    batch: int
    learning_rate: float
    seed: int = 0
    checkpoint_every: int = 200
    cosine_decay: bool = False  # learning rate falls to 0 over the steps (else constant)
    start_from: str = ""  # weights of the same network to start from (else random, by seed)
    mirror: bool = False  # orientation tasks: half the samples mirrored left-right, planes too
    # fine task: the landmark head (`orientation.FINE_LANDMARKS`) learnt beside the planes, its
    # loss weighted this much against theirs (0: no landmark head)
    landmark_weight: float = 0.0


DEFAULT_RECIPES = {
    # Seed 1: with seed 0 the same recipe refused usable real localizers as artifacts.
    "iq": Recipe("iq", steps=12000, batch=64, learning_rate=2e-3, seed=1, cosine_decay=True),
    "coverage": Recipe("coverage", steps=1500, batch=4, learning_rate=2e-3, cosine_decay=True),
    "orientation": Recipe("orientation", steps=2000, batch=2, learning_rate=1e-3, cosine_decay=True),
    # mirror images: a second, mirrored anatomy for every individual (the first three
    # training runs, in the model card, had none)
    # and (since the landmark head, models/orientation_fine_net.md) the midline landmarks
    "fine": Recipe("fine", steps=1500, batch=4, learning_rate=1e-3, cosine_decay=True, mirror=True,
                   landmark_weight=0.02),
    # the commissure look: the midline landmarks alone, AC and PC weighted most
    # (models/orientation_commissure_net.md; started from the fine stage's weights)
    "commissures": Recipe("commissures", steps=2000, batch=4, learning_rate=1e-3, seed=31,
                          cosine_decay=True, mirror=True),
}
# where each orientation task's inputs are in the shards: volumes and their grids
ORIENTATION_FIELDS = {"orientation": ("orientation_volumes", "orientation_grids"),
                      "fine": ("fine_volumes", "fine_grids"),
                      "commissures": ("fine_volumes", "fine_grids")}
SMOOTHED_FRACTION = 0.5  # of LocalizerIQ-Net's training images smoothed by ...
SMOOTHING_SIGMA_PX = (0.3, 1.0)  # ... a Gaussian of this sigma (pixels of the 64 x 64 input)
REMAPPED_FRACTION = 0.5  # of training images and volumes given a random intensity curve
HEAT_EMPHASIS = 20.0  # the centre blobs are small: their voxels weigh this much more
# the landmark loss: cross-entropy of each landmark's softmax against its target, plus this
# much per mm between the softmax's mean position and the true point
LANDMARK_POSITION_WEIGHT = 0.1
COMMISSURE_EMPHASIS = 3.0  # the commissure look's loss: AC and PC weigh this much more


def _landmark_loss(tf, y_true, y_pred, spacing_mm: float, weights):
    """Per landmark inside the grid (`orientation.landmark_targets`): cross-entropy of its
    softmax over the grid, plus `LANDMARK_POSITION_WEIGHT` x the distance (mm) of the
    softmax's mean from the truth; the mean over those landmarks, weighted by `weights`."""
    shape = y_pred.shape[1:4]
    count = tf.shape(y_pred)[0]
    target = tf.reshape(y_true, (count, -1, y_pred.shape[-1]))
    log_p = tf.nn.log_softmax(tf.reshape(y_pred, (count, -1, y_pred.shape[-1])), axis=1)
    inside = tf.cast(tf.reduce_sum(target, axis=1) > 0.5, tf.float32) * weights
    cross_entropy = -tf.reduce_sum(target * log_p, axis=1)
    voxels = tf.reshape(tf.stack(tf.meshgrid(*[tf.range(n, dtype=tf.float32) for n in shape],
                                             indexing="ij"), axis=-1), (-1, 3))
    offset = tf.einsum("bnl,nc->blc", tf.exp(log_p) - target, voxels) * spacing_mm
    error_mm = tf.sqrt(tf.reduce_sum(offset**2, axis=-1) + 1e-6)
    per_landmark = (cross_entropy + LANDMARK_POSITION_WEIGHT * error_mm) * inside
    return tf.reduce_sum(per_landmark, axis=1) / (tf.reduce_sum(inside, axis=1) + 1e-6)


def _register():
    k = keras()
    tf = tensorflow()

    @k.saving.register_keras_serializable(package="isp_node")
    def dice_bce(y_true, y_pred):
        """Binary cross-entropy plus soft Dice loss for the brain mask."""
        bce = k.losses.binary_crossentropy(y_true, y_pred)
        axes = (1, 2, 3, 4)
        inter = tf.reduce_sum(y_true * y_pred, axis=axes)
        total = tf.reduce_sum(y_true, axis=axes) + tf.reduce_sum(y_pred, axis=axes)
        dice = 1.0 - (2.0 * inter + 1.0) / (total + 1.0)
        return tf.reduce_mean(bce, axis=(1, 2, 3)) + dice

    @k.saving.register_keras_serializable(package="isp_node")
    def orientation_loss(y_true, y_pred):
        """Squared distance error where the distance is learnt, plus the centre heat error
        with the blobs emphasised (targets stacked as `orientation.Targets.stacked`)."""
        n = len(PLANE_KEYS)
        distance, weight, heat = y_true[..., :n], y_true[..., n:2 * n], y_true[..., 2 * n:]
        axes = (1, 2, 3, 4)
        distance_error = tf.reduce_sum(weight * (y_pred[..., :n] - distance) ** 2, axis=axes) / (
            tf.reduce_sum(weight, axis=axes) + 1.0)
        heat_error = tf.reduce_mean((1.0 + HEAT_EMPHASIS * heat) * (y_pred[..., n:] - heat) ** 2,
                                    axis=axes)
        return distance_error + heat_error

    @k.saving.register_keras_serializable(package="isp_node")
    def landmark_loss(y_true, y_pred):
        """The fine stage's landmark head: `_landmark_loss` on its grid, every landmark alike."""
        return _landmark_loss(tf, y_true, y_pred, FINE_SPACING_MM, 1.0)

    @k.saving.register_keras_serializable(package="isp_node")
    def commissure_loss(y_true, y_pred):
        """The commissure look: `_landmark_loss` on its grid, AC and PC (the first two)
        weighted `COMMISSURE_EMPHASIS`."""
        weights = tf.constant([COMMISSURE_EMPHASIS] * 2 + [1.0] * (len(FINE_LANDMARKS) - 2))
        return _landmark_loss(tf, y_true, y_pred, COMMISSURE_SPACING_MM, weights)

    return dice_bce, orientation_loss, landmark_loss, commissure_loss


def _optimizer(recipe: Recipe):
    """Adam at the recipe's rate, constant or cosine-decayed over its steps (the step count
    is part of the optimizer's checkpointed state, so a resumed run keeps its schedule)."""
    k = keras()
    rate = k.optimizers.schedules.CosineDecay(recipe.learning_rate, recipe.steps) \
        if recipe.cosine_decay else recipe.learning_rate
    return k.optimizers.Adam(rate)


def build_model(recipe: Recipe):
    if recipe.task == "iq":
        model = build_iq_net()
        model.compile(_optimizer(recipe), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    elif recipe.task == "coverage":
        model = build_coverage_net()
        model.compile(_optimizer(recipe), loss=_register()[0])
    elif recipe.task == "commissures":
        model = build_commissure_net(len(FINE_LANDMARKS), COMMISSURE_SHAPE)
        model.compile(_optimizer(recipe), loss=_register()[3])
    elif recipe.task in ORIENTATION_FIELDS:
        shape = FINE_SHAPE if recipe.task == "fine" else ORIENTATION_SHAPE
        _, orientation_loss, landmark_loss, _ = _register()
        if recipe.landmark_weight and recipe.task != "fine":
            raise ValueError("only the fine stage has a landmark head (landmark_weight)")
        if recipe.landmark_weight:
            model = build_orientation_net(len(PLANE_KEYS), shape, landmarks=len(FINE_LANDMARKS))
            model.compile(_optimizer(recipe), loss=[orientation_loss, landmark_loss],
                          loss_weights=[1.0, recipe.landmark_weight])
        else:
            model = build_orientation_net(len(PLANE_KEYS), shape)
            model.compile(_optimizer(recipe), loss=orientation_loss)
    else:
        raise ValueError(f"unknown task {recipe.task!r} (known: iq, coverage, orientation, fine, "
                         "commissures)")
    return model


def _augment_images(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random 90-degree turns, flips, smoothing, intensity curves and scaling: what an image
    shows does not depend on its orientation on the screen, on how finely its noise is
    grained (a thin full-resolution slice anti-aliased by the loader is smoother than a
    simulated coarse one; an empty image is noise either way), on the tissue contrast of
    the one head it was simulated from, or on its brightness."""
    out = np.rot90(images, k=int(rng.integers(4)), axes=(1, 2))
    if rng.uniform() < 0.5:
        out = out[:, :, ::-1]
    out = np.array(out, dtype=np.float32)
    for i in np.flatnonzero(rng.uniform(size=len(out)) < SMOOTHED_FRACTION):
        out[i] = normalised(ndimage.gaussian_filter(out[i], rng.uniform(*SMOOTHING_SIGMA_PX)))
    for i in np.flatnonzero(rng.uniform(size=len(out)) < REMAPPED_FRACTION):
        out[i] = normalised(random_intensity_curve(rng)(out[i]))
    return out * rng.uniform(0.7, 1.3, (len(out), 1, 1))


def random_intensity_curve(rng: np.random.Generator, knots: int = 6):
    """A random increasing map of normalised intensities: piecewise linear through `knots`
    points from 0 to 1.5 with random steps (0 and 1.5 stay, brighter ones too), so tissues
    keep their order but not their relative brightness."""
    x = np.linspace(0.0, 1.5, knots)
    y = np.concatenate([[0.0], np.cumsum(rng.dirichlet(np.full(knots - 1, 2.0)))]) * 1.5
    return lambda image: np.where(image > 1.5, image, np.interp(image, x, y)).astype(np.float32)


def _augment_volumes(volumes: np.ndarray, brains: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Left-right flips and `_augment_intensity`."""
    if rng.uniform() < 0.5:
        volumes, brains = volumes[:, ::-1], brains[:, ::-1]
    return _augment_intensity(volumes, rng), brains


def _augment_intensity(volumes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random intensity curves (as for the images), then intensity gamma and scale of the
    image channel (contrast varies between scanners and heads)."""
    volumes = np.array(volumes, dtype=np.float32)
    for i in np.flatnonzero(rng.uniform(size=len(volumes)) < REMAPPED_FRACTION):
        volumes[i, ..., 0] = random_intensity_curve(rng)(volumes[i, ..., 0])
    gamma = rng.uniform(0.7, 1.4, (len(volumes), 1, 1, 1))
    volumes[..., 0] = np.clip(volumes[..., 0], 0, None) ** gamma * rng.uniform(
        0.8, 1.2, (len(volumes), 1, 1, 1))
    return volumes


class Batches:
    """Deterministic random batches of one task from shards held in memory."""

    def __init__(self, recipe: Recipe, shards: list[Path]) -> None:
        self.recipe = recipe
        self.weights = None
        if recipe.task == "iq":
            data = datasets.load_shards(shards, ("images", "labels", "brain_mm2"))
            self.x = data["images"]
            self.y = data["labels"].astype(np.int32)
            counts = np.bincount(self.y, minlength=3).astype(float)
            self.p = (1.0 / np.maximum(counts, 1))[self.y]
            self.p /= self.p.sum()  # balanced classes
            # images showing about as much brain as the anatomy threshold are a matter
            # of definition, not of seeing: they count less
            area = data["brain_mm2"] / ANATOMY_MIN_BRAIN_MM2
            borderline = (area > 0.5) & (area < 1.5)
            self.weights = np.where(borderline, 0.3, 1.0).astype(np.float32)
        elif recipe.task in ORIENTATION_FIELDS:
            volumes, grids = ORIENTATION_FIELDS[recipe.task]
            self.landmarks_only = recipe.task == "commissures"
            with_landmarks = recipe.landmark_weight or self.landmarks_only
            fields = (volumes, grids, "planes") + (("landmarks",) if with_landmarks else ())
            data = datasets.load_shards(shards, fields)
            keep = np.isfinite(data[grids][:, 3])  # cases with a brain to plan on
            self.x = data[volumes][keep]
            self.grids = data[grids][keep]
            self.y = data["planes"][keep]
            self.landmarks = data["landmarks"][keep] if with_landmarks else None
            self.p = None
        else:
            data = datasets.load_shards(shards, ("volumes", "brains"))
            self.x = data["volumes"]
            self.y = data["brains"]
            self.p = None

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.recipe.seed, step])
        index = rng.choice(len(self.x), self.recipe.batch, p=self.p)
        if self.recipe.task == "iq":
            x = _augment_images(self.x[index].astype(np.float32), rng)[..., None]
            return x.astype(np.float32), self.y[index], self.weights[index]
        if self.recipe.task in ORIENTATION_FIELDS:
            x = _augment_intensity(self.x[index].astype(np.float32), rng)
            grids = [Grid(tuple(x.shape[1:4]), float(g[3]), g[:3]) for g in self.grids[index]]
            planes = list(self.y[index])
            points = None if self.landmarks is None else self.landmarks[index].copy()
            if self.recipe.mirror:
                for i in np.flatnonzero(rng.uniform(size=len(x)) < 0.5):
                    x[i] = x[i, ::-1]
                    planes[i] = mirrored_plane_array(planes[i], float(grids[i].centre[0]))
                    if points is not None:  # midline landmarks: mirrored, none changes sides
                        points[i, :, 0] = 2 * grids[i].centre[0] - points[i, :, 0]
            if self.landmarks_only:
                y = np.stack([landmark_targets(grid, p, COMMISSURE_SIGMA_MM)
                              for grid, p in zip(grids, points)])
                return np.ascontiguousarray(x), y, None
            y = np.stack([plane_targets(grid, p).stacked() for grid, p in zip(grids, planes)])
            if points is not None:
                y = [y, np.stack([landmark_targets(grid, p) for grid, p in zip(grids, points)])]
            return np.ascontiguousarray(x), y, None
        x, y = _augment_volumes(self.x[index].astype(np.float32),
                                self.y[index].astype(np.float32) / 255, rng)
        return np.ascontiguousarray(x), np.ascontiguousarray(y[..., None]), None


def start_weights(model, start) -> None:
    """`model` given the weights of `start`'s layers of the same names: a head that `start`
    lacks (such as the landmark head) starts afresh, and a head that `model` lacks (the fine
    stage's plane maps, for the commissure look) is left out."""
    names = {layer.name for layer in model.layers}
    for layer in start.layers:
        if layer.weights and layer.name in names:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def train(recipe: Recipe, data_dirs: list[Path], work_dir: Path, progress: bool = True):
    """Train (or resume) `recipe` on the shards in `data_dirs`; return the model."""
    from tqdm import tqdm

    k = keras()
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, state_path = work_dir / "checkpoint.keras", work_dir / "state.json"
    start = 0
    if state_path.exists() and checkpoint.exists():
        state = json.loads(state_path.read_text())
        if state["recipe"] != asdict(recipe):
            raise ValueError(f"{work_dir} holds a run of another recipe: {state['recipe']}")
        _register()
        model, start = k.models.load_model(checkpoint), state["step"]
    else:
        k.utils.set_random_seed(recipe.seed)
        model = build_model(recipe)
        state = {"recipe": asdict(recipe), "step": 0, "seconds": 0.0, "losses": []}
        if recipe.start_from:
            _register()
            start_weights(model, k.models.load_model(recipe.start_from))
            digest = hashlib.sha256(Path(recipe.start_from).read_bytes()).hexdigest()
            state["start_from_sha256"] = digest
    shards = [shard for data_dir in data_dirs
              for shard in sorted(data_dir.glob(f"shard_v{datasets.FORMAT}_*.npz"))]
    if not shards:
        raise FileNotFoundError(f"no training shards in {', '.join(map(str, data_dirs))}")
    batches = Batches(recipe, shards)
    state["samples"] = len(batches)
    state["data"] = ", ".join(map(str, data_dirs))
    losses: list[float] = []
    started = time.monotonic()
    bar = tqdm(range(start, recipe.steps), initial=start, total=recipe.steps,
               desc=f"training {recipe.task}", unit="step", disable=not progress)
    for step in bar:
        x, y, weights = batches.batch(step)
        result = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
        losses.append(float(result["loss"]))
        if (step + 1) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == recipe.steps:
            model.save(checkpoint)
            state["step"] = step + 1
            state["seconds"] += time.monotonic() - started
            started = time.monotonic()
            state["losses"].append([step + 1, float(np.mean(losses[-recipe.checkpoint_every:]))])
            state_path.write_text(json.dumps(state, indent=1))
    return model, state
