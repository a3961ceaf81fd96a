"""The plan burned into RGB Secondary Capture images, one per localizer image, for
consoles that show neither SR nor presentation states (DESIGN section 3)."""

import numpy as np
from highdicom import PhotometricInterpretationValues
from highdicom.sc import SCImage
from pydicom.dataset import Dataset

from isp_node.outputs.localizer import MANUFACTURER, Localizer, ResultSeries
from isp_node.outputs.overlay import crossed_images, display_window, render_rgb
from isp_node.pipeline.result import PlanningResult
from isp_node.pipeline.slices import ImageSlice

SERIES_DESCRIPTION = "ISP Planning Captures"


def _window(ds: Dataset, image: ImageSlice) -> tuple[float, float]:
    """The localizer's own display window when it has one."""
    try:
        centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        first = [float(v[0] if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue"
                       else v) for v in (centre, width)]
        return display_window(image, *first)
    except (TypeError, ValueError, IndexError):
        return display_window(image)


def _orientation_letters(direction: np.ndarray) -> str:
    """Patient Orientation code of a direction, e.g. 'L' or 'PF' (main axes first)."""
    letters = (("L", "R"), ("P", "A"), ("H", "F"))
    order = np.argsort(-np.abs(direction))
    return "".join(letters[axis][0 if direction[axis] > 0 else 1] for axis in order
                   if abs(direction[axis]) > 0.25)[:3] or "L"


def build_secondary_captures(localizer: Localizer, result: PlanningResult,
                             series: ResultSeries) -> list[SCImage]:
    """One capture per localizer image that an OK plane crosses (none for an unusable
    localizer, so no overlay claims a plane)."""
    if not result.usable:
        return []
    captures = []
    for ds, frame, image, lines in crossed_images(localizer, result):
        pixels = render_rgb(image, lines, _window(ds, image))
        number = len(captures) + 1
        sc = SCImage.from_ref_dataset(
            ds, pixels, PhotometricInterpretationValues.RGB, bits_allocated=8,
            coordinate_system="PATIENT",
            series_instance_uid=series.series_uid("capture"),
            series_number=series.series_number("capture"),
            sop_instance_uid=series.uid("capture", ds.SOPInstanceUID, frame),
            instance_number=number, manufacturer=MANUFACTURER,
            pixel_spacing=tuple(float(v) for v in image.spacing),
            patient_orientation=(_orientation_letters(image.row),
                                 _orientation_letters(image.col)),
        )
        sc.SeriesDescription = SERIES_DESCRIPTION
        sc.BurnedInAnnotation = "YES"
        sc.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        sc.DerivationDescription = "planned slice positions drawn on the localizer image"
        if localizer.frame_of_reference_uid:
            sc.FrameOfReferenceUID = localizer.frame_of_reference_uid
        source = Dataset()
        source.ReferencedSOPClassUID = ds.SOPClassUID
        source.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        if frame is not None:
            source.ReferencedFrameNumber = frame
        sc.SourceImageSequence = [source]
        sc.SoftwareVersions = series.software_version
        captures.append(sc)
    return captures
