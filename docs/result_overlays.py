"""What the node's overlays look like: docs/result_overlays.png.

    PYTHONPATH=. python docs/result_overlays.py

The demo's simulated localizer with six of its true planes as an OK planning
result, drawn exactly as the secondary captures burn them in (and as the
presentation state's PLAN layer places them): the middle sagittal, coronal and
axial images, enlarged twice.
"""

from pathlib import Path

from PIL import Image

from isp_node.demo import DEMO_SEED
from isp_node.outputs.overlay import plan_lines, render_rgb
from isp_node.pipeline.result import PlaneStatus, PlannedPlane, PlanningResult
from isp_node.simulation.cases import simulate_case

KEYS = ("MSP", "ACPC", "OPTIC_AX", "PIT_SAG", "IAC_AX", "HIPPO_COR")
SCALE = 2


def main() -> None:
    case = simulate_case(DEMO_SEED, kind="usable", protocol="three_plane", head="mni")
    result = PlanningResult(True, "localizer usable", tuple(
        PlannedPlane(key, case.planes[key], 1.0, PlaneStatus.OK) for key in KEYS))
    tiles = []
    for orientation in ("sagittal", "coronal", "axial"):
        images = [s for s in case.slices if s.orientation == orientation]
        image = images[len(images) // 2]
        tile = Image.fromarray(render_rgb(image, plan_lines(result, image)))
        tiles.append(tile.resize((tile.width * SCALE, tile.height * SCALE), Image.NEAREST))
    montage = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
    for i, tile in enumerate(tiles):
        montage.paste(tile, (sum(t.width for t in tiles[:i]), 0))
    out = Path(__file__).parent / "result_overlays.png"
    montage.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
