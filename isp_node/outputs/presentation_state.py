"""The plan as a Grayscale Softcopy Presentation State over the localizer series:
each OK plane's intersection with each localizer image as a POLYLINE on the
``PLAN`` graphic layer, labelled with the plane key (DESIGN section 3)."""

import numpy as np
from highdicom.color import CIELabColor
from highdicom.pr import (
    AnnotationUnitsValues,
    GraphicAnnotation,
    GraphicGroup,
    GraphicLayer,
    GraphicObject,
    GraphicTypeValues,
    GrayscaleSoftcopyPresentationState,
    TextObject,
)

from isp_node.outputs.localizer import MANUFACTURER, Localizer, ResultSeries
from isp_node.outputs.overlay import crossed_images
from isp_node.pipeline.result import PlanningResult

SERIES_DESCRIPTION = "ISP Planning Overlay"
LAYER = "PLAN"
CONTENT_LABEL = "ISP_PLAN"
LAYER_COLOUR = (255, 200, 0)  # RGB; one colour per layer is all a GSPS offers


def _pixel_point(rc: np.ndarray) -> np.ndarray:
    """(column, row) in presentation-state PIXEL units, where (0, 0) is the top left
    corner of the top left pixel, of a (row, col) pixel-centre coordinate."""
    return np.array([rc[1] + 0.5, rc[0] + 0.5])


def build_presentation_state(localizer: Localizer, result: PlanningResult,
                             series: ResultSeries) -> GrayscaleSoftcopyPresentationState | None:
    """The GSPS of the result's OK planes, or None when no OK plane crosses any image."""
    if not result.usable:
        return None
    layer = GraphicLayer(LAYER, order=1, description="planned slice positions",
                         display_color=CIELabColor.from_rgb(*LAYER_COLOUR))
    groups = {p.key: GraphicGroup(i + 1, p.key, description=f"plane {p.key}")
              for i, p in enumerate(result.ok_planes)}
    annotations = []
    for ds, frame, _, lines in crossed_images(localizer, result):
        graphics = [GraphicObject(
            GraphicTypeValues.POLYLINE, np.stack([_pixel_point(e) for e in line.ends]),
            AnnotationUnitsValues.PIXEL, tracking_id=line.key,
            tracking_uid=series.uid("tracking", line.key), graphic_group=groups[line.key])
            for line in lines]
        labels = [TextObject(line.key, AnnotationUnitsValues.PIXEL,
                             anchor_point=tuple(_pixel_point(line.label_point)),
                             anchor_point_visible=False, graphic_group=groups[line.key])
                  for line in lines]
        annotations.append(GraphicAnnotation([ds], layer, referenced_frame_number=frame,
                                             graphic_objects=graphics, text_objects=labels))
    if not annotations:
        return None
    gsps = GrayscaleSoftcopyPresentationState(
        referenced_images=list(localizer.datasets),
        series_instance_uid=series.series_uid("presentation"),
        series_number=series.series_number("presentation"),
        sop_instance_uid=series.uid("presentation", "instance"), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name=MANUFACTURER,
        software_versions=series.software_version,
        device_serial_number=series.device_serial_number,
        content_label=CONTENT_LABEL, content_description="Planned slice positions",
        graphic_annotations=annotations, graphic_layers=[layer],
        graphic_groups=list(groups.values()),
    )
    gsps.SeriesDescription = SERIES_DESCRIPTION
    return gsps

