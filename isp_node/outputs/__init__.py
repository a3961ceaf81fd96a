"""The planning result as DICOM objects (DESIGN section 3), built with highdicom.

`planning_report` makes the Comprehensive 3D SR (and reads it back),
`presentation_state` the GSPS with the plane lines, `secondary_capture` RGB
images with the lines burned in. All go into the localizer's study, each kind
in a new series, referring to the localizer's Frame of Reference.
"""

from dataclasses import dataclass

from pydicom.dataset import Dataset

from isp_node.outputs.localizer import Localizer, ResultSeries
from isp_node.outputs.planning_report import build_planning_report
from isp_node.outputs.presentation_state import build_presentation_state
from isp_node.outputs.secondary_capture import build_secondary_captures
from isp_node.pipeline.result import PlanningResult


@dataclass(frozen=True)
class ResultObjects:
    """What the node returns for one localizer series."""

    report: Dataset
    presentation_state: Dataset | None
    captures: tuple[Dataset, ...]

    def all(self) -> list[Dataset]:
        """Every object, the report first."""
        extra = [self.presentation_state] if self.presentation_state is not None else []
        return [self.report, *extra, *self.captures]


def make_overlays(localizer: Localizer, result: PlanningResult,
                  series: ResultSeries) -> list[Dataset]:
    """The presentation state and secondary captures (none for an unusable localizer or
    when no OK plane crosses an image)."""
    gsps = build_presentation_state(localizer, result, series)
    return ([gsps] if gsps is not None else []) + build_secondary_captures(localizer, result, series)


def make_result_objects(localizer: Localizer, result: PlanningResult,
                        series: ResultSeries | None = None) -> ResultObjects:
    """Every result object of one localizer series."""
    series = series or ResultSeries(localizer)
    overlays = make_overlays(localizer, result, series)
    gsps = next((o for o in overlays if o.Modality == "PR"), None)
    return ResultObjects(build_planning_report(localizer, result, series), gsps,
                         tuple(o for o in overlays if o is not gsps))
