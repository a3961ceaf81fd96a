"""`isp-node evaluate iq`'s pass through DICOM, with the networks shipped in models/."""

from isp_node.cascade.evaluation import evaluate_through_dicom
from isp_node.cascade.planner import Cascade


def test_through_dicom_counts_every_image_once_by_kind():
    """The per-kind tallies add up to the whole: every image read back from the DICOM files
    is scored once, under its localizer's protocol and contrast or its unusable kind."""
    result = evaluate_through_dicom(Cascade(), range(3_000_000, 3_000_004), "mni",
                                    unusable_fraction=0.5, progress=False)
    by_kind = result["accuracy_by_kind"]
    assert sum(k["images"] for k in by_kind.values()) == result["images"] > 0
    right = sum(k["images"] * k["accuracy"] for k in by_kind.values())
    assert abs(right / result["images"] - result["accuracy"]) < 1e-3
    usable = [kind for kind in by_kind if not kind.startswith("unusable: ")]
    assert usable and all(len(kind.split()) == 2 for kind in usable)  # "protocol contrast"
    assert sum(map(sum, result["confusion_rows_truth_cols_predicted"])) == result["images"]
