"""Leave-one-out over Palm et al.'s five variants: train each agent on four, test on all five.

Palm, Najarro & Risi 2021 (Table 1): the ant's bodies default, damage_left ("damage L"),
palm_damage_right ("damage R"), long_back and long_front, trained without long_front; the car's
five track variations likewise. Each agent (``--agents``: hebbian, static, lstm, gru) is one
training run on the four training variants (fitness: their mean) followed by test lifetimes on
all five; the table prints in Palm's layout, their number in brackets beside ours where the
protocol is theirs (the ant with long_front held out). Shared-rule flags (``--rho 128 --assign
random``) apply to the Hebbian row. ``--paper`` is Palm et al.'s budget: the paper's population, lr
and sigma, 500 generations for the ant (300 for the car). Resumable: run files and test results live in
``--study-dir``; run the same command again to continue a killed study.

    python experiments/run_palm.py --task ant --holdout long_front            # short budget
    python experiments/run_palm.py --task ant --holdout long_front --paper --episodes 100
    python experiments/run_palm.py --task car --holdout push_right --agents hebbian static
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from spikehebb.agents import AGENTS
from spikehebb.cli import (add_evaluate_arguments, add_train_arguments, check_evaluate_flags, config_from_args,
                           exit_interrupted)
from spikehebb.config import AgentConfig, StrategyConfig, TrainConfig
from spikehebb.palm import PALM_GENERATIONS, PALM_HOLDOUT, PALM_NAMES, PALM_VARIANTS, leave_one_out, reference
from spikehebb.report import papers_protocol
from spikehebb.stopping import STOP_REQUEST
from spikehebb.study import Arm, format_study, run_study

AGENT_KINDS = ("hebbian", "static", "lstm", "gru")


def arms(args: argparse.Namespace, base: TrainConfig, holdout: str) -> list[Arm]:
    """One arm per agent: the base config with the agent, the four training variants, a run name."""
    out = []
    for kind in args.agents:
        if kind == "hebbian":  # the flags' plastic agent: a rate network, or LIF neurons (--neuron lif)
            agent = base.agent if AGENTS[base.agent.kind].takes_rule else AgentConfig()
            strategy = base.strategy
            label = (f"hebbian {agent.label}" if agent.kind == "hebbian" else f"{agent.kind} {agent.rule}") + (
                f" {strategy.label}" if strategy.shares_rules else "")
        else:
            agent = AgentConfig(kind=kind, rule=None, backend=base.agent.backend, dtype=base.agent.dtype)
            init = args.baseline_init
            # The shared-rule settings are the Hebbian arm's alone; a baseline keeps the rest of the
            # search (population, lr, sigma, optimizer, lr decay); its name says where the last two are not the default.
            plain = StrategyConfig()
            strategy = dataclasses.replace(base.strategy, shared_rules=None, rho=None, assign=plain.assign, noise=plain.noise,
                                           merge_every=plain.merge_every, merge_fraction=plain.merge_fraction, init=init)
            label = kind if init == "normal" else f"{kind} init-{init}"
            if strategy.optimizer != plain.optimizer:
                label += f" {strategy.optimizer}"
            if strategy.lr_decay != plain.lr_decay:
                label += f" lr-decay-{strategy.lr_decay:g}"
        name = f"palm_{base.task.name}_{holdout}_{label.replace(' ', '_')}_s{base.seed}"
        config = base.replace(agent=agent, strategy=strategy, run_name=name)
        out.append(Arm(label, config))
    return out


def palm_references(study_arms: list[Arm], task: str, holdout: str) -> dict:
    """Palm et al.'s Table 1 row per arm name, for the arms that are their setting: their agent
    kinds (the Hebbian one with ABCD_lr), one rule per synapse, and none of the biology options or
    other protocols (:func:`spikehebb.report.papers_protocol`)."""
    refs = {}
    for arm in study_arms:
        kind = arm.config.agent.kind
        plain = not arm.config.strategy.shares_rules and papers_protocol(arm.config)
        ref = reference(task, holdout, kind) if plain else None
        if ref is not None and (kind != "hebbian" or arm.config.agent.rule == "ABCD_lr"):
            refs[arm.name] = ref
    return refs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_train_arguments(parser, task="ant")
    add_evaluate_arguments(parser, first_input=False)
    g = parser.add_argument_group("leave-one-out")
    g.add_argument("--holdout", help=f"the variant left out of training (default: Palm et al.'s, {PALM_HOLDOUT})")
    g.add_argument("--agents", nargs="+", choices=AGENT_KINDS, default=["hebbian", "static", "lstm"],
                   help="agents to train, one run each (default: %(default)s, Palm et al.'s Table 1 rows)")
    g.add_argument("--study-dir", default="runs/palm", help="run files and the test-result cache (default: %(default)s)")
    g.add_argument("--baseline-init", choices=("normal", "zeros"), default="normal",
                   help="where the static, LSTM and GRU arms' search starts: N(0, 1) per number (default; "
                        "Palm et al.'s, whose main.py replaced evostrat's zero means with t.randn) or zeros "
                        "(evostrat's own start, which no paper's run used); the Hebbian arm starts its rules N(0, 1)")
    parser.set_defaults(episodes=5)
    args = parser.parse_args(argv)
    with STOP_REQUEST:  # the table too: a request after the last arm's tests waits for it
        try:
            if args.init is not None:
                raise ValueError("--init does not apply: the Hebbian arm starts N(0, 1) as Palm et al.'s did; "
                                 "--baseline-init sets where the static, LSTM and GRU arms start")
            for flag in ("train_variants", "resume", "run_name", "static", "agent", "variants", "no_early_end"):
                if getattr(args, flag, None):
                    raise ValueError(f"--{flag.replace('_', '-')} does not apply: the study picks the variants, the agents "
                                     "(--agents) and the run files' names, and resumes by itself")
            for flag in ("traces", "overwrite_traces", "trace_episodes", "trace_synapses"):
                if getattr(args, flag, None):
                    raise ValueError(f"--{flag.replace('_', '-')} does not apply: the study records no traces "
                                     "(`spikehebb evaluate RUN --traces` on one of its run files does)")
            if args.which != "mean":
                raise ValueError("--which does not apply: the study tests each run's final search mean, as the papers did")
            holdout = args.holdout or PALM_HOLDOUT.get(args.task)
            if holdout is None:
                raise ValueError(f"give --holdout for the {args.task}: one of {', '.join(PALM_VARIANTS.get(args.task, ()))}")
            args.train_variants = list(leave_one_out(args.task, holdout))
            if args.paper and args.generations is None:  # Palm et al. ran the ant 500 generations, not Najarro's 300
                args.generations = PALM_GENERATIONS[args.task]
            args.runs_dir = args.study_dir
            base = config_from_args(args)
            check_evaluate_flags(args, base.task.make())  # --episodes, --eval-workers, --eval-steps
            study_arms = arms(args, base, holdout)  # every config is checked here, before a file is written
            variants = PALM_VARIANTS[args.task]
            workers = args.eval_workers or os.cpu_count() or 1
            cache = Path(args.study_dir) / f"palm_{args.task}_{holdout}_s{base.seed}.json"
            results = run_study(study_arms, variants, args.episodes, cache, workers, args.eval_steps, not args.no_progress)
        except (ValueError, OSError, RuntimeError) as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
        except KeyboardInterrupt as err:
            exit_interrupted(parser.prog, err)
        refs = palm_references(study_arms, args.task, holdout)
        print(f"\nLeave-one-out on the {args.task}: trained on {', '.join(leave_one_out(args.task, holdout))}; "
              f"* = held out. mean ± std over {args.episodes} test lifetimes" + (" (Palm et al. 2021, Table 1, 100 lifetimes)" if refs else ""))
        print(format_study(results, variants, refs, {holdout: "*"}))
        if args.task == "ant":
            print("Palm's names: " + ", ".join(f"{v} = {PALM_NAMES[v]}" for v in variants)
                  + ". Their shared rules at rho = 128 (480 rules: their ant code divided the 5N coefficients; "
                  "ours: --shared-rules 480): about 0 on every body.")
        print(f"run files and results: {args.study_dir}")


if __name__ == "__main__":
    sys.exit(main())
