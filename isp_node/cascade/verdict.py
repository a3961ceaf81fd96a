"""The localizer quality verdict: usable or not, and what the operator should do.

Stage 1 classes each image (anatomy / artifact / irrelevant); stage 2 measures
how much brain the localizer covers and each image shows, which settles an image's
class where the two disagree and the map is clear (`image_classes`). A localizer is
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
ANATOMY, IRRELEVANT = IQ_CLASSES.index("anatomy"), IQ_CLASSES.index("irrelevant")
# An image shows brain or not by its brain area (1000 mm2, `simulation.cases`), which
# Coverage-Net's map measures in 3D where LocalizerIQ-Net sees one 64 x 64 picture. Chosen on
# simulated localizers of the four training heads (300 on the fast path, seeds 6,000,000+;
# 100 through DICOM, seeds 7,000,000+), not on the evaluation sets (LocalizerIQ-Net's card,
# "Classes from both networks"; checked again with the map read between its voxels,
# "Image areas between voxels").
NO_BRAIN_MM2 = 600.0  # the map shows less: irrelevant
CLEAR_BRAIN_MM2 = 1500.0  # the map shows more: brain, where the localizer shows brain at all


@dataclass(frozen=True)
class Verdict:
    usable: bool
    message: str
    counts: dict[str, int]


def image_classes(probabilities: np.ndarray, brain_mm2: np.ndarray,
                  no_brain_mm2: float = NO_BRAIN_MM2,
                  clear_brain_mm2: float = CLEAR_BRAIN_MM2) -> np.ndarray:
    """The classes (indices into `IQ_CLASSES`) of one localizer's images: LocalizerIQ-Net's,
    but irrelevant where Coverage-Net's map shows under `no_brain_mm2` of brain in the image
    (`brain.image_brain_mm2`), and anatomy or artifact (whichever the network prefers) where it
    shows over `clear_brain_mm2`, if the network sees anatomy in any image of the localizer
    (the node uses the module's constants). At 64 x 64 the network takes some empty slices of
    a ghosted localizer for artifact, slices through the face for brain and slices at the
    brain's edge for none; a map can draw a brain in a noise-only or off-head localizer
    (Coverage-Net did up to its eleventh version), which the network alone then tells apart."""
    probabilities, brain_mm2 = np.asarray(probabilities), np.asarray(brain_mm2)
    classes = np.where(brain_mm2 < no_brain_mm2, IRRELEVANT, probabilities.argmax(axis=1))
    if not (classes == ANATOMY).any():
        return classes
    brain = (brain_mm2 > clear_brain_mm2) & (classes == IRRELEVANT)
    return np.where(brain, probabilities[:, :IRRELEVANT].argmax(axis=1), classes)


def localizer_verdict(classes: list[str], orientations: list[str],
                      brain_ml: float, run_off: list[str] | tuple[str, ...] = ()) -> Verdict:
    """Decide from per-image classes (with each image's orientation) and the brain volume
    (ml) Coverage-Net found inside the localizer's coverage; a usable localizer whose brain
    runs off its images on the `run_off` sides (`brain.run_off_sides`) is planned, with a
    warning."""
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
    if run_off:
        sides = " and ".join(run_off) + (" sides" if len(run_off) > 1 else " side")
        return Verdict(True, f"localizer usable, but the brain runs beyond its images on the "
                       f"{sides}: the planes' coverage there is estimated; check it, or "
                       "re-centre and repeat the localizer", summary)
    return Verdict(True, "localizer usable", summary)
