"""Choose how far beyond Coverage-Net's brain the planes of the whole brain reach.

    python docs/plane_allowance.py --models DIR [--data var/data]

The node sizes the field of view and slab of the planes that image the whole brain
(`geometry.sizing.BRAIN_PLANES`) to the brain voxels of Coverage-Net's map, plus an
allowance for the map's error (`EDGE_ALLOWANCE_MM`; in the image also the scalp). This
measures, per allowance, how often the true brain is cut by the sized field of view or
slab, and what the allowance costs in slices, on the true planes of the usable localizers
of the four training heads' tuning set (seeds 6,000,000+, the one `image_class_thresholds.py`
uses, made into DATA/tune_iq on first use), never on the evaluation sets.

DIR holds Coverage-Net.
"""

from extent_threshold import tuning_maps
from isp_node.cascade.evaluation import brain_plane_coverage
from isp_node.geometry.sizing import EDGE_ALLOWANCE_MM

ALLOWANCES_MM = (0.0, 5.0, 10.0, 15.0, 20.0)


def main() -> None:
    maps, truths, d = tuning_maps(__doc__.split("\n")[0], ("origins", "planes"))
    print(f"{len(maps)} usable localizers")
    for allowance in ALLOWANCES_MM:
        found = brain_plane_coverage(maps, truths, d["origins"], d["planes"], allowance)
        mark = "  <- the node's now" if allowance == EDGE_ALLOWANCE_MM else ""
        print(f"{allowance:4.1f} mm:" + "; ".join(
            f" {key} brain cut in {m['cut_share']:.1%} (p95 {m['outside_ml_p95']:.1f} ml, max "
            f"{m['outside_ml_max']:.1f}), {m['extra_slices_median']:+.0f} slices"
            for key, m in found.items()) + mark)


if __name__ == "__main__":
    main()
