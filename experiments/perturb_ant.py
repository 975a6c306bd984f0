"""Perturb the ant in the middle of its lifetime and measure how fast it walks again.

At network step T (``--t0``) of each of ``--episodes`` test lifetimes: nothing (control), all
weights re-drawn at random, one leg's motors off (damage during life), or the rule frozen; the
recovery is the number of steps until the speed over a 50-step window regains 80% of its level
before T (``spikehebb/perturb.py``). A Hebbian run and, optionally, a static-weights run:

    python experiments/perturb_ant.py --hebbian runs/HEBB.h5 --static runs/STATIC.h5 --episodes 20

Prints the Markdown table and writes PREFIX.json (rows and settings) and PREFIX.png (mean speed
around T), PREFIX defaulting to the Hebbian run's path + "_recovery".
"""

import argparse
import json
import sys
from pathlib import Path

from spikehebb.lifetimes import is_shipped_model, resolve_run, run_label
from spikehebb.perturb import PERTURBATIONS, markdown_table, rows_to_json, run_experiment
from spikehebb.plots import plot_recovery
from spikehebb.store.transaction import check_can_write, whole_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hebbian", required=True, metavar="RUNFILE", help="run file of a Hebbian (rule) run")
    parser.add_argument("--static", metavar="RUNFILE", help="run file of a static-weights run to compare (optional)")
    parser.add_argument("--episodes", type=int, default=20, help="lifetimes per model and perturbation (default: %(default)s)")
    parser.add_argument("--t0", type=int, default=480, help="network step at which the perturbation hits (default: %(default)s, mid-lifetime)")
    parser.add_argument("--perturbations", nargs="+", default=list(PERTURBATIONS), choices=PERTURBATIONS,
                        help="which perturbations (default: all)")
    parser.add_argument("--leg", type=int, default=0, help="leg whose motors --perturbations motor turns off: 0 front left (default), 1 back left, 2 back right, 3 front right")
    parser.add_argument("--variant", default="default", help="body to run (default: %(default)s)")
    parser.add_argument("--which", choices=("mean", "best"), default="mean", help="parameters: search mean (default) or best candidate")
    parser.add_argument("--eval-steps", type=int, help="env steps per lifetime incl. the 40 burn-in steps (default: 1,000)")
    parser.add_argument("--out", metavar="PREFIX", help="PREFIX.json and PREFIX.png (default: HEBBIAN_RUN_recovery; "
                        "for a shipped model runs/NAME_recovery)")
    args = parser.parse_args(argv)
    models = {"hebbian": args.hebbian}
    if args.static:
        models["static"] = args.static
    try:
        labels = {role: run_label(path) for role, path in models.items()}
        if "static" in labels and labels["static"] != "static":
            raise ValueError(f"--static {args.static} is a {labels['static']} run, not a static-weights one")
        if labels["hebbian"] == "static":
            raise ValueError(f"--hebbian {args.hebbian} is a static-weights run; give it as --static and a rule run as --hebbian")
        if labels["hebbian"] in ("lstm", "gru"):
            raise ValueError(f"--hebbian {args.hebbian} is a {labels['hebbian']} run, with no plasticity rule: give a rule run")
        hebbian = resolve_run(args.hebbian)
        prefix = Path(args.out) if args.out else hebbian.with_name(hebbian.stem + "_recovery")
        if not args.out and is_shipped_model(hebbian):  # not into models/
            prefix = Path("runs") / prefix.name
            prefix.parent.mkdir(exist_ok=True)
        json_path, png_path = (prefix.with_name(prefix.name + suffix) for suffix in (".json", ".png"))  # "lr0.2" keeps its dot
        check_can_write([json_path, png_path], "--out", prefix)  # said now, not after the lifetimes
        models = {labels[role]: path for role, path in models.items()}
        rows, speeds = run_experiment(models, args.perturbations, args.episodes, args.t0, variant=args.variant,
                                      leg=args.leg, which=args.which, max_env_steps=args.eval_steps)
        table = markdown_table(rows)
        print(table)  # the results are on the screen whatever happens to the files
        settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
        with whole_file(json_path, "write the recovery table") as tmp:
            tmp.write_text(json.dumps({"settings": settings, "rows": rows_to_json(rows), "table": table}, indent=1))
        with whole_file(png_path, "write the recovery figure") as tmp:
            plot_recovery(speeds, args.t0).savefig(tmp, dpi=100)
    except (ValueError, OSError, RuntimeError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"wrote {json_path} and {png_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
