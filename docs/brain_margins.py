"""Choose the node's two distances at the brain's edge: how far beyond Coverage-Net's brain
the planes of the whole brain reach, and how far past the localizer's images that brain
must reach for the verdict to warn that it runs off them.

    python docs/brain_margins.py --models DIR [--data var/data]

Both are measured on the usable localizers of the four training heads' tuning set (seeds
6,000,000+, the one `image_class_thresholds.py` uses, made into DATA/tune_iq on first use),
never on the evaluation sets:

- the allowance (`geometry.sizing.EDGE_ALLOWANCE_MM`): the true planes sized to the map as
  the node sizes the MSP and AC-PC plane, how often the true brain is cut by their field
  of view or slab, and what the allowance costs in slices;
- the run-off distance (`cascade.brain.RUN_OFF_MM`): how many localizers' true brains run
  over 4 mm past their images, how many are warned of, how many of those are found, and
  how many sides are named wrongly.

DIR holds Coverage-Net.
"""

from collections.abc import Callable

from extent_threshold import tuning_maps
from isp_node.cascade.brain import RUN_OFF_MM
from isp_node.cascade.evaluation import brain_plane_coverage, run_off_metrics
from isp_node.geometry.sizing import EDGE_ALLOWANCE_MM

ALLOWANCES_MM = (0.0, 5.0, 10.0, 15.0, 20.0)
RUN_OFF_DISTANCES_MM = (-8.0, -4.0, 0.0, 4.0, 8.0)


def print_choices(values: tuple[float, ...], chosen: float, line: Callable[[float], str]) -> None:
    for value in values:
        print(line(value) + ("  <- the node's now" if value == chosen else ""))


def main() -> None:
    maps, truths, d = tuning_maps(__doc__.split("\n")[0], ("origins", "planes", "image_frames"))
    print(f"{len(maps)} usable localizers\nallowance beyond the map's brain:")

    def sized(allowance: float) -> str:
        found = brain_plane_coverage(maps, truths, d["origins"], d["planes"], allowance)
        return f"{allowance:4.1f} mm:" + "; ".join(
            f" {key} brain cut in {m['cut_share']:.1%} (p95 {m['outside_ml_p95']:.1f} ml, max "
            f"{m['outside_ml_max']:.1f}), {m['extra_slices_median']:+.0f} slices"
            for key, m in found.items())

    def warned(beyond: float) -> str:
        m = run_off_metrics(maps, truths, d["origins"], d["image_frames"], beyond)
        return (f"map {beyond:+4.1f} mm past the images: warned {m['warned']}, of the "
                f"{m['brain_runs_off']} whose brain runs off {m['warned_and_runs_off']}, sides "
                f"named wrongly {m['sides_named_wrongly']}")

    print_choices(ALLOWANCES_MM, EDGE_ALLOWANCE_MM, sized)
    print("warning that the brain runs off the images:")
    print_choices(RUN_OFF_DISTANCES_MM, RUN_OFF_MM, warned)


if __name__ == "__main__":
    main()
