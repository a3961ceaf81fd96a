"""The localizer quality verdict: usable or not, and what the operator should do.

Stage 1 classes each image (anatomy / artifact / irrelevant); stage 2 measures
how much brain the localizer covers. A localizer is usable when no more than a
third of its brain images are artifact-dominated, at least `MIN_ANATOMY_IMAGES`
images show anatomy and the covered brain is at least `MIN_BRAIN_ML`; otherwise
the message says why, in the technologist's words.
"""

from collections import Counter
from dataclasses import dataclass

MIN_ANATOMY_IMAGES = 2
MIN_BRAIN_ML = 300.0
MAX_ARTIFACT_SHARE = 0.34  # of the images showing brain: more artifact is not planned on


@dataclass(frozen=True)
class Verdict:
    usable: bool
    message: str
    counts: dict[str, int]


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
