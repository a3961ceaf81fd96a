"""The localizer quality verdict: usable or not, and what the operator should do.

Stage 1 classes each image (anatomy / artifact / irrelevant); stage 2 measures
how much brain the localizer covers, and an image in which it finds no brain at
all is irrelevant whatever stage 1 made of it (`image_classes`). A localizer is
usable when no more than a third of its brain images are artifact-dominated, at
least `MIN_ANATOMY_IMAGES` images show anatomy and the covered brain is at least
`MIN_BRAIN_ML`; otherwise the message says why, in the technologist's words.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from isp_node.cascade.models import IQ_CLASSES

MIN_ANATOMY_IMAGES = 2
MIN_BRAIN_ML = 300.0
MAX_ARTIFACT_SHARE = 0.34  # of the images showing brain: more artifact is not planned on
IRRELEVANT = IQ_CLASSES.index("irrelevant")


@dataclass(frozen=True)
class Verdict:
    usable: bool
    message: str
    counts: dict[str, int]


def image_classes(probabilities: np.ndarray, brain_mm2: np.ndarray) -> np.ndarray:
    """Each image's class (indices into `IQ_CLASSES`): LocalizerIQ-Net's, but irrelevant where
    Coverage-Net finds no brain in the image (`brain.image_brain_mm2`). An image is anatomy or
    artifact only if it shows brain; at 64 x 64 the network takes some empty slices of a
    ghosted localizer for artifact and slices through the face for brain, where the 3D map
    is clear (model card)."""
    classes = np.asarray(probabilities).argmax(axis=1)
    return np.where(np.asarray(brain_mm2) > 0.0, classes, IRRELEVANT)


def localizer_verdict(classes: list[str], orientations: list[str],
                      brain_ml: float) -> Verdict:
    """Decide from per-image classes (with each image's orientation) and the brain volume
    (ml) Coverage-Net found inside the localizer's coverage."""
    counts = Counter(classes)
    summary = {c: counts.get(c, 0) for c in ("anatomy", "artifact", "irrelevant")}
    anatomy = summary["anatomy"]
    if summary["artifact"] > max(1, MAX_ARTIFACT_SHARE * (anatomy + summary["artifact"])):
        return Verdict(False, "localizer images dominated by artifacts (motion, noise or "
                       "interference): ask the patient to keep still and repeat the "
                       "localizer", summary)
    if anatomy < MIN_ANATOMY_IMAGES:
        if summary["artifact"] >= summary["irrelevant"]:
            return Verdict(False, "localizer images dominated by artifacts (motion, noise or "
                           "interference): ask the patient to keep still and repeat the "
                           "localizer", summary)
        return Verdict(False, "no brain in the localizer images: check the coil and landmark, "
                       "re-centre on the head and repeat the localizer", summary)
    if brain_ml < MIN_BRAIN_ML:
        return Verdict(False, f"brain not covered (only {brain_ml:.0f} ml seen): re-centre on the "
                       "head and repeat the localizer", summary)
    present = set(orientations)
    with_anatomy = {o for o, c in zip(orientations, classes) if c == "anatomy"}
    if len(present) > 1 and len(with_anatomy) == 1:
        missing = ", ".join(sorted(present - with_anatomy))
        return Verdict(False, f"no brain in the {missing} images: re-centre and repeat the "
                       "localizer", summary)
    return Verdict(True, "localizer usable", summary)
