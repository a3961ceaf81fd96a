"""The planning report: a Comprehensive 3D SR (TID 1500 Measurement Report), the
machine-readable result (DESIGN section 3), and its parser.

Content tree under "Imaging Measurements":

- one TID 1501 group, tracking identifier ``LOCALIZER``: ``Localizer usable``
  Yes/No, one ``Localizer image class`` per image (anatomy / artifact /
  irrelevant, inferred from that image) and the ``Operator message``;
- one TID 1410 planar ROI group per plane, tracking identifier = plane key,
  finding = code ``(<key>, 99ISP)``, image region = closed SCOORD3D POLYGON of
  the field of view (corners as `Plane.corners`, first repeated) in the
  localizer's Frame of Reference, measurements ``Slab thickness`` (mm),
  ``Number of slices``, ``Slice spacing`` (mm), ``Confidence`` (0..1) and the
  qualitative evaluation ``Planning status`` = OK / LOW_CONFIDENCE / FAILED.

The polygon fixes the centre, row and column directions and field of view; the
normal's sign follows the catalogue convention (``col x row`` for sagittal-like
planes, ``row x col`` otherwise), which `read_planning_report` applies.
"""

import numpy as np
from highdicom.sr import (
    AlgorithmIdentification,
    CodeContentItem,
    CodedConcept,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    GraphicTypeValues3D,
    ImageContentItem,
    ImageRegion3D,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    RelationshipTypeValues,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage

from isp_node.geometry.catalogue import PLANE_NAMES, PRESCRIPTIONS, SAGITTAL
from isp_node.geometry.planes import Plane
from isp_node.outputs.localizer import MANUFACTURER, Localizer, ResultSeries
from isp_node.pipeline.result import (
    ImageVerdict,
    PlaneStatus,
    PlannedPlane,
    PlanningResult,
    ResultError,
)

SERIES_DESCRIPTION = "ISP Planning Report"
SCHEME = "99ISP"
LOCALIZER_TRACKING_ID = "LOCALIZER"


def isp_code(value: str, meaning: str) -> CodedConcept:
    """A concept of the node's own coding scheme."""
    return CodedConcept(value, SCHEME, meaning)


PROCEDURE = isp_code("MR_PLANNING", "MR examination planning from a localizer")
LOCALIZER_QUALITY = isp_code("LOCALIZER_QUALITY", "Localizer quality")
LOCALIZER_USABLE = isp_code("LOCALIZER_USABLE", "Localizer usable")
IMAGE_CLASS = isp_code("IMAGE_CLASS", "Localizer image class")
OPERATOR_MESSAGE = isp_code("OPERATOR_MESSAGE", "Operator message")
PLANNING_STATUS = isp_code("PLANNING_STATUS", "Planning status")
SLAB_THICKNESS = isp_code("SLAB_THICKNESS", "Slab thickness")
NUMBER_OF_SLICES = isp_code("NUMBER_OF_SLICES", "Number of slices")
SLICE_SPACING = isp_code("SLICE_SPACING", "Slice spacing")
CONFIDENCE = isp_code("CONFIDENCE", "Confidence")
MILLIMETRE = CodedConcept("mm", "UCUM", "millimeter")
SLICES = CodedConcept("{slices}", "UCUM", "slices")
NO_UNITS = CodedConcept("1", "UCUM", "no units")
STATUS_MEANINGS = {PlaneStatus.OK: "planned", PlaneStatus.LOW_CONFIDENCE: "planned with low confidence",
                   PlaneStatus.FAILED: "planning failed"}


def plane_code(key: str) -> CodedConcept:
    return isp_code(key, PLANE_NAMES.get(key, f"plane {key}"))


def image_class_code(image_class: str) -> CodedConcept:
    return isp_code(image_class.upper(), image_class)


def algorithm(result: PlanningResult, series: ResultSeries) -> AlgorithmIdentification:
    """isp-node and the versions of the networks that made the result."""
    models = [f"{name}: {version}" for name, version in sorted(result.models.items())]
    version = "; ".join([series.software_version, *models])
    return AlgorithmIdentification(name=MANUFACTURER, version=version, parameters=models or None)


def _localizer_group(localizer: Localizer, result: PlanningResult, series: ResultSeries,
                     algorithm_id: AlgorithmIdentification) -> MeasurementsAndQualitativeEvaluations:
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(series.uid("tracking", LOCALIZER_TRACKING_ID),
                                               LOCALIZER_TRACKING_ID),
        finding_type=LOCALIZER_QUALITY,
        algorithm_id=algorithm_id,
        qualitative_evaluations=[QualitativeEvaluation(
            LOCALIZER_USABLE, codes.SCT.Yes if result.usable else codes.SCT.No)],
    )
    by_uid = {str(ds.SOPInstanceUID): ds for ds in localizer.datasets}
    content = group[0].ContentSequence
    for image in result.images:
        ds = by_uid.get(image.sop_instance_uid)
        if ds is None:
            continue
        item = CodeContentItem(IMAGE_CLASS, image_class_code(image.image_class),
                               RelationshipTypeValues.CONTAINS)
        frame = int(image.uid.split("#")[1]) if "#" in image.uid else None
        item.ContentSequence = [ImageContentItem(
            codes.DCM.SourceOfMeasurement, ds.SOPClassUID, ds.SOPInstanceUID,
            referenced_frame_numbers=frame, relationship_type=RelationshipTypeValues.INFERRED_FROM)]
        content.append(item)
    if result.message:
        content.append(TextContentItem(OPERATOR_MESSAGE, result.message[:1024],
                                       RelationshipTypeValues.CONTAINS))
    return group


def _plane_group(planned: PlannedPlane, frame_uid: str, series: ResultSeries,
                 algorithm_id: AlgorithmIdentification
                 ) -> PlanarROIMeasurementsAndQualitativeEvaluations:
    corners = planned.plane.corners()
    polygon = np.vstack([corners, corners[:1]])
    p = planned.plane
    return PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(series.uid("tracking", planned.key), planned.key),
        referenced_region=ImageRegion3D(GraphicTypeValues3D.POLYGON, polygon, frame_uid),
        finding_type=plane_code(planned.key),
        algorithm_id=algorithm_id,
        measurements=[
            Measurement(SLAB_THICKNESS, p.slab_mm, MILLIMETRE),
            Measurement(NUMBER_OF_SLICES, p.n_slices, SLICES),
            Measurement(SLICE_SPACING, p.spacing_mm, MILLIMETRE),
            Measurement(CONFIDENCE, planned.confidence, NO_UNITS),
        ],
        qualitative_evaluations=[QualitativeEvaluation(
            PLANNING_STATUS, isp_code(planned.status.value, STATUS_MEANINGS[planned.status]))],
    )


def build_planning_report(localizer: Localizer, result: PlanningResult,
                          series: ResultSeries) -> Comprehensive3DSR:
    """The SR of one localizer series: verdict, every plane, evidence = the localizer."""
    frame_uid = localizer.frame_of_reference_uid
    if result.planes and not frame_uid:
        raise ResultError("the localizer has no Frame of Reference UID: planes cannot be placed")
    algorithm_id = algorithm(result, series)
    observer = ObserverContext(codes.DCM.Device, DeviceObserverIdentifyingAttributes(
        uid=series.uid("device"), name=MANUFACTURER, manufacturer_name=MANUFACTURER,
        model_name=MANUFACTURER, serial_number=series.device_serial_number))
    groups = [_localizer_group(localizer, result, series, algorithm_id)]
    groups += [_plane_group(p, frame_uid, series, algorithm_id) for p in result.planes]
    report = MeasurementReport(ObservationContext(observer_device_context=observer), PROCEDURE,
                               groups)
    sr = Comprehensive3DSR(
        evidence=list(localizer.datasets), content=report[0],
        series_instance_uid=series.series_uid("report"),
        series_number=series.series_number("report"),
        sop_instance_uid=series.uid("report", "instance"), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True,
    )
    sr.SeriesDescription = SERIES_DESCRIPTION
    sr.SoftwareVersions = series.software_version
    scheme = Dataset()
    scheme.CodingSchemeDesignator = SCHEME
    scheme.CodingSchemeName = "isp-node planning concepts and plane catalogue"
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def _items(parent: Dataset, name: CodedConcept) -> list[Dataset]:
    """Direct children of a content item whose concept name is `name`."""
    return [item for item in parent.get("ContentSequence", [])
            if item.get("ConceptNameCodeSequence")
            and item.ConceptNameCodeSequence[0].CodeValue == name.value
            and item.ConceptNameCodeSequence[0].CodingSchemeDesignator == name.scheme_designator]


def _one(parent: Dataset, name: CodedConcept, where: str) -> Dataset:
    found = _items(parent, name)
    if len(found) != 1:
        raise ResultError(f"{where}: expected one {name.meaning!r} item, found {len(found)}")
    return found[0]


def _code_value(item: Dataset) -> str:
    return str(item.ConceptCodeSequence[0].CodeValue)


def _num(group: Dataset, name: CodedConcept, where: str) -> float:
    return float(_one(group, name, where).MeasuredValueSequence[0].NumericValue)


def _plane_from_polygon(key: str, region: Dataset) -> tuple[np.ndarray, ...]:
    """Centre, row, col, normal and (fov along row, along col) of a field-of-view polygon."""
    points = np.asarray(region.GraphicData, dtype=float).reshape(-1, 3)
    if region.GraphicType != "POLYGON" or points.shape != (5, 3) or \
            not np.allclose(points[0], points[4]):
        raise ResultError(f"plane {key}: the region is not a closed polygon of 4 corners")
    corners = points[:4]
    along_row, along_col = corners[1] - corners[0], corners[3] - corners[0]
    fov = np.array([np.linalg.norm(along_row), np.linalg.norm(along_col)])
    row = along_row / fov[0]
    col = along_col - (along_col @ row) * row
    col /= np.linalg.norm(col)
    sagittal = key in PRESCRIPTIONS and PRESCRIPTIONS[key].kind == SAGITTAL
    normal = np.cross(col, row) if sagittal else np.cross(row, col)
    return corners.mean(axis=0), row, col, normal, fov


def _read_localizer_group(group: Dataset) -> tuple[bool, str, list[ImageVerdict], dict[str, str]]:
    where = "localizer quality"
    usable = _code_value(_one(group, LOCALIZER_USABLE, where)) == codes.SCT.Yes.value
    message = "; ".join(str(i.TextValue) for i in _items(group, OPERATOR_MESSAGE))
    images = []
    for item in _items(group, IMAGE_CLASS):
        ref = item.ContentSequence[0].ReferencedSOPSequence[0]
        frame = ref.get("ReferencedFrameNumber")
        uid = str(ref.ReferencedSOPInstanceUID) + (f"#{int(frame)}" if frame else "")
        images.append(ImageVerdict(uid, _code_value(item).lower()))
    models = {}
    for parameter in _items(group, codes.DCM.AlgorithmParameters):
        name, _, version = str(parameter.TextValue).partition(": ")
        models[name] = version
    return usable, message, images, models


def _read_plane_group(key: str, group: Dataset) -> PlannedPlane:
    where = f"plane {key}"
    regions = [i for i in group.ContentSequence if i.ValueType == "SCOORD3D"]
    if len(regions) != 1:
        raise ResultError(f"{where}: expected one SCOORD3D region, found {len(regions)}")
    centre, row, col, normal, fov = _plane_from_polygon(key, regions[0])
    plane = Plane(centre=centre, normal=normal, row=row, col=col, fov_mm=(fov[0], fov[1]),
                  slab_mm=_num(group, SLAB_THICKNESS, where),
                  n_slices=int(round(_num(group, NUMBER_OF_SLICES, where))),
                  spacing_mm=_num(group, SLICE_SPACING, where))
    status = _code_value(_one(group, PLANNING_STATUS, where))
    return PlannedPlane(key, plane, _num(group, CONFIDENCE, where), PlaneStatus(status))


def read_planning_report(ds: Dataset) -> PlanningResult:
    """The planning result an ISP Planning Report encodes (ResultError when it is none)."""
    if ds.get("SOPClassUID") != Comprehensive3DSRStorage or "ContentSequence" not in ds:
        raise ResultError("not a Comprehensive 3D SR with content")
    try:
        measurements = _one(ds, codes.DCM.ImagingMeasurements, "report")
        localizer, planes = None, []
        for group in _items(measurements, codes.DCM.MeasurementGroup):
            key = str(_one(group, codes.DCM.TrackingIdentifier, "measurement group").TextValue)
            if key == LOCALIZER_TRACKING_ID:
                localizer = _read_localizer_group(group)
            else:
                planes.append(_read_plane_group(key, group))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ResultError):
            raise
        raise ResultError(f"malformed planning report: {type(exc).__name__}: {exc}") from None
    if localizer is None:
        raise ResultError("no localizer quality group (Localizer usable)")
    usable, message, images, models = localizer
    return PlanningResult(usable, message, tuple(planes), tuple(images), models)
