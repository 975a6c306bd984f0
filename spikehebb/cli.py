"""The ``spikehebb`` command: train, evaluate, inspect, plot, film and report runs.

    spikehebb train [--paper] [--static] [--rule ABCD_lr] [--popsize 64] [--generations 60] ...
    spikehebb evaluate RUNFILE [--morphology default damage_left ...] [--episodes 100] [--traces [--overwrite-traces]]
    spikehebb inspect RUNFILE
    spikehebb plot RUNFILE [-o curve.png] [--traces]
    spikehebb video RUNFILE_OR_MODEL --variant damage_left -o ant.mp4
    spikehebb report RUNFILE [-o RUN.html]

``experiments/run_ant.py`` and ``run_car.py`` are ``train`` followed by ``evaluate`` on every
variant; each task has its own short default and ``--paper`` settings (:data:`SETTINGS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

from spikehebb.checks import repeated
from spikehebb.config import (EVALUATOR_NAMES, STALL_TIMEOUT_S, STRATEGY_INITS, STRATEGY_NAMES, StrategyConfig,
                              TrainConfig)
from spikehebb.rules import RULES, THREE_FACTOR_SUFFIX
from spikehebb.stopping import STOP_REQUEST
from spikehebb.tasks import FIRST_INPUT_WORDS, FIRST_INPUTS

#: The two --first-input choices in words, for train's and evaluate's help.
_FIRST_INPUT_CHOICES = (f"{FIRST_INPUT_WORDS['settled']} (settled) or {FIRST_INPUT_WORDS['reset']} "
                        f"(reset, as the authors' code did)")

#: Najarro & Risi 2020's ant settings (``--paper``).
PAPER = dict(popsize=500, generations=300, max_env_steps=1000, lr=0.2, sigma=0.1, train_variants=("default", "damage_right"))
#: The default: a run that learns within 10 minutes on 2 cores (chosen by measurement,
#: docs/results.md): the whole body only, population 64, 60 generations of 1,000-step lifetimes,
#: the paper's lr scaled to population 64 (lr * sqrt(64 / 500), experiments/variance_study.py).
SHORT = dict(popsize=64, generations=60, max_env_steps=1000, train_variants=("default",), lr_reference_popsize=500)
#: Najarro & Risi 2020's car settings: population 200 on the default track, 1,000-step episodes,
#: the same OpenAI-ES constants. The number of generations is ours (the ant's 300).
CAR_PAPER = dict(popsize=200, generations=300, max_env_steps=1000, lr=0.2, sigma=0.1, train_variants=("default",))
#: The car's short default: a few minutes on 2 cores (a car lifetime step costs about 2 ms).
CAR_SHORT = dict(popsize=16, generations=10, max_env_steps=200)

#: Per task: ``{"short": ..., "paper": ...}`` TrainConfig fields (explicit flags win).
SETTINGS = {"ant": {"short": SHORT, "paper": PAPER}, "car": {"short": CAR_SHORT, "paper": CAR_PAPER}}
#: Where a new run's file goes unless --runs-dir says otherwise.
DEFAULT_RUNS_DIR = TrainConfig.__dataclass_fields__["runs_dir"].default


def task_settings(task: str, paper: bool) -> dict:
    """The task's ``--paper`` or short-default TrainConfig fields (the ant's for other tasks)."""
    return dict(SETTINGS.get(task, SETTINGS["ant"])["paper" if paper else "short"])


class _TypedTask(argparse.Action):
    """``--task``: stores the name and that it was typed (``args._task_given``), so that a resumed
    run tells ``--task ant`` from the parser's default ``ant`` (:func:`task_given`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace._task_given = True


def add_train_arguments(parser: argparse.ArgumentParser, task: str = "ant") -> None:
    """Flags shared by ``spikehebb train`` and ``experiments/run_*.py``; the help shows the
    defaults of ``task`` (``--task`` may pick another, whose own defaults then apply)."""
    from spikehebb.tasks import get_task

    short, paper = task_settings(task, False), task_settings(task, True)
    t = get_task(task)
    burn_in = f" incl. the {t.episode.burn_in_steps} burn-in steps" if t.episode.burn_in_steps else ""
    g = parser.add_argument_group("training")
    parser.set_defaults(_default_task=task, _task_given=False)
    g.add_argument("--task", default=task, action=_TypedTask, help="registered task (default: %(default)s)")
    g.add_argument(
        "--paper", action="store_true",
        help=f"the paper's settings: population {paper['popsize']}, {paper['generations']} generations, "
        f"{paper['max_env_steps']:,} steps",
    )
    g.add_argument("--static", action="store_true", help="evolve static weights instead of a rule (the paper's baseline)")
    from spikehebb.agents import AGENTS

    g.add_argument("--agent", choices=[kind for kind in AGENTS if kind != "lif"],  # lif: --neuron lif
                   help="agent kind: a Hebbian network (default), static weights (= --static), Palm et al.'s "
                        "recurrent baseline, the static network with its first layer an LSTM (or GRU), or a "
                        "plug-in's kind (SPIKEHEBB_PLUGINS)")
    g.add_argument("--coevolve", action="store_true", help="evolve the initial weights together with the rule")
    g.add_argument("--rule", metavar="RULE", help=f"plasticity rule, one of {', '.join(RULES)} (default: ABCD_lr); the "
                                                  "three-factor version of each: add --modulated")
    g.add_argument("--fitness-floor", type=float, metavar="F",
                   help="raise each training lifetime's fitness to at least F before the mean over the bodies "
                        "(the authors' code until 2020-10-08: 0); tests are not floored (default: no floor)")
    g.add_argument("--first-input", choices=FIRST_INPUTS,
                   help=f"what the network sees at its first step: {_FIRST_INPUT_CHOICES} (default: settled)")
    g.add_argument("--coefficient-rows", choices=("per_synapse", "i_plus_j", "mirror"),
                   help="which coefficient row of its layer synapse (i, j) reads: its own (per_synapse, the paper's "
                        "text, default); row i + j, as the authors' published code did before its fix of "
                        "2020-10-13 (synapses on an anti-diagonal share a rule: 417 rules on the ant); or, on the "
                        "ant, the row of it or its left-right mirror synapse, with signs (mirror: lifetimes on "
                        "mirror-image bodies are alike in distribution, so damage_left gets what damage_right learns)")
    g.add_argument("--backend", choices=("brian2", "numpy"),
                   help="network backend: the rule as Brian2 equations compiled to C++, or batched NumPy (default: brian2)")
    g.add_argument("--strategy", choices=STRATEGY_NAMES,
                   help="evolution strategy: OpenAI-ES as the paper ran it, or separable CMA-ES (default: openai-es)")
    g.add_argument("--popsize", type=int, help=f"candidates per generation (default {short['popsize']}, --paper {paper['popsize']})")
    g.add_argument("--generations", type=int, help=f"(default {short['generations']}, --paper {paper['generations']})")
    g.add_argument("--max-env-steps", type=int, help=f"env steps per lifetime{burn_in} (default {short['max_env_steps']}, --paper {paper['max_env_steps']})")
    g.add_argument("--train-variants", nargs="+", metavar="VARIANT", help=f"training variants (default: {' '.join(short.get('train_variants', t.train_variants))}, --paper "
                   f"{' '.join(paper.get('train_variants', t.train_variants))}; valid: {' '.join(t.variants)})")
    reference, lr = short.get("lr_reference_popsize"), StrategyConfig().lr
    scaled = StrategyConfig(popsize=short["popsize"], lr_reference_popsize=reference).effective_lr
    scaled = f"; the short default scales it to the population, {scaled:.3g} at {short['popsize']}: see --scale-lr" if reference else ""
    g.add_argument("--lr", type=float, help=f"OpenAI-ES learning rate (default {lr:g}{scaled})")
    g.add_argument("--shared-rules", type=int, metavar="M",
                   help="share M rules among the network's synapses (the genomic bottleneck; default: one rule per synapse)")
    g.add_argument("--rho", type=int, help="synapses per shared rule, M = N / rho (rho must divide N; 32 on the ant: 384 rules; Palm et al.'s "
                        "ant code divided the 5N coefficients, so their ant rho R is --shared-rules 61440/R)")
    g.add_argument("--assign", choices=("gmm", "random", "merge"),
                   help="with --shared-rules/--rho: Palm et al.'s evolved mixture (gmm, default), a fixed random "
                        "assignment, or Evolve & Merge (per-synapse rules merged by k-means down to M)")
    g.add_argument("--noise", choices=("rule", "synapse"),
                   help="gmm/random noise: one draw per rule, every candidate is M rules (default), or per synapse "
                        "as Palm et al.'s code")
    g.add_argument("--optimizer", choices=("sgd", "adam"), help="ES update of OpenAI-ES and shared rules (default: sgd)")
    g.add_argument("--lr-decay", type=float, metavar="FACTOR",
                   help="the learning rate's factor per generation (default 0.995, both papers'; Palm et al.'s best "
                        "shared-rule ant: --optimizer adam --lr 1.0 --lr-decay 0.99309, x0.5 per 100 generations)")
    g.add_argument("--merge-every", type=int, metavar="K", help="with --assign merge: generations between merges (default 20)")
    g.add_argument("--merge-fraction", type=float, metavar="F",
                   help="with --assign merge: share of the rules one merge removes (default 0.5)")
    g.add_argument("--sigma", type=float, help="noise scale / CMA sigma0 (default 0.1)")
    g.add_argument("--paired-seeds", action="store_true", default=None,
                   help="common random numbers: both members of an OpenAI-ES mirrored pair get the same initial "
                        "weights and env starts (a lower-variance gradient; not the paper's)")
    g.add_argument("--scale-lr", type=int, metavar="POPSIZE", dest="lr_reference_popsize",
                   help="scale the learning rate with the population, lr * sqrt(popsize / POPSIZE), which keeps "
                        "the update's noise per coefficient at what lr gives at population POPSIZE (e.g. 500, the paper's); "
                        "0: no scaling. " + (f"The short default scales by {reference} unless --lr or --scale-lr is given; "
                                             "--paper does not" if reference else "Neither the short default nor --paper scales it"))
    g.add_argument("--init", choices=STRATEGY_INITS,
                   help="where the search starts: normal N(0, 1) per searched number (default; the authors' Hebbian "
                        "code), uniform U[-1, 1], zeros (evostrat's own start; Palm et al.'s code replaced it with N(0, 1)), or "
                        "fan_in: static weights U(+-1/sqrt(n_pre)) per layer, torch's nn.Linear default, where "
                        "Najarro & Risi's static baseline started (--static only)")
    g.add_argument("--seed", type=int,
                   help="run seed: candidates, initial weights and env starts all derive from it (default: 0)")
    g.add_argument("--workers", type=int, help="worker processes or Ray actors (default: one per core of this machine; "
                                               "--ray ADDRESS needs it: the actors to start on the cluster)")
    g.add_argument("--evaluator", choices=list(EVALUATOR_NAMES), help="where lifetimes run (default: processes)")
    g.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'local', 'auto' (existing cluster) or HOST:PORT")
    g.add_argument("--batch-size", type=int, help="members per lockstep batch in a worker, each with one env per training body (default: "
                        "popsize / workers in equal batches of at most 64, fewer where the envs would take over 60%% of the free memory: "
                        "an ant env takes about 32 MB)")
    g.add_argument("--stall-timeout", metavar="SECONDS",
                   help="a busy worker process or Ray actor that finishes no lifetime for this long is taken for hung: "
                        f"stopped, replaced and its work run again, the same numbers ('never': wait for ever; default: "
                        f"{STALL_TIMEOUT_S:g})")
    g.add_argument("--build-timeout", metavar="SECONDS",
                   help="likewise for a new worker that is not built in this long (Brian2's first compile included; "
                        f"on Ray, waiting for a free CPU too; 'never': wait for ever; default: {STALL_TIMEOUT_S:g})")
    g.add_argument("--runs-dir", help=f"where a new run's file goes (default: {DEFAULT_RUNS_DIR})")
    g.add_argument("--run-name", metavar="NAME",
                   help="a new run's file is RUNS_DIR/NAME.h5 (default: task, agent, strategy, seed and the start time)")
    g.add_argument("--resume", metavar="RUNFILE",
                   help="continue a run from its last generation with its own settings; only --generations "
                        "(to extend a finished run) and where it runs (--workers, --evaluator, --batch-size, --ray, "
                        "--stall-timeout, --build-timeout) may change")
    g.add_argument("--no-progress", action="store_true",
                   help="show no progress (default: a bar on a terminal, one line per generation in a log file)")
    add_neuron_arguments(parser)
    add_biology_arguments(parser)


def add_biology_arguments(parser: argparse.ArgumentParser) -> None:
    """Biology-minded network options (Burns 2021; spikehebb.biology), all off by default."""
    from spikehebb.network import WEIGHT_INITS

    g = parser.add_argument_group("biology-minded networks (Hebbian agents)")
    g.add_argument("--dale", type=float, metavar="FRACTION",
                   help="Dale's law: this fraction of every layer's units excitatory (in (0, 1]), the rest inhibitory; "
                        "outgoing weights keep their unit's sign (E/I assignment seeded by --seed)")
    g.add_argument("--dale-mode", choices=("clip", "smooth", "squareplus"),
                   help="with --dale: 'clip' (a weight crossing zero stays at zero, default), 'smooth' "
                        "(w = s*softplus(s*v), the rule acting on v) or 'squareplus' (the same with the cheaper "
                        "algebraic link (x + sqrt(x^2 + 0.04)) / 2)")
    g.add_argument("--dale-unbalanced", action="store_true",
                   help="with --dale: every unit sends with gain 1 (default: E/I balanced gains n/(2 n_E) and n/(2 n_I), "
                        "so each unit's E and I inputs sum alike; unbalanced 80%% E layers saturate at +1 at once)")
    g.add_argument("--positive", action="store_true",
                   help="non-negative rates: on/off input pairs, rectified tanh, actions from agonist/antagonist "
                        "output pairs (r+ - r-); the ant's network becomes 56-128-64-16")
    g.add_argument("--modulated", action="store_true",
                   help="three-factor rule: an eligibility trace per synapse, gated by the task's reward signal minus "
                        "a running baseline (one more evolved coefficient per synapse)")
    g.add_argument("--eligibility-tau", type=float, metavar="STEPS", help="with --modulated: trace time constant (default 50)")
    g.add_argument("--baseline-tau", type=float, metavar="STEPS",
                   help="with --modulated: the modulator baseline's time constant (default 100)")
    g.add_argument("--weight-init", choices=WEIGHT_INITS,
                   help="initial weights: uniform U[-0.1, 0.1] (the paper, default), normal N(0, 0.1) (not the authors' "
                        "'normal' option, N(0, 0.024)), or lognormal magnitudes")
    g.add_argument("--rule-every", type=int, metavar="K", help="apply the rule every K env steps (default 1)")
    g.add_argument("--rate-average", type=float, metavar="TAU",
                   help="the rule reads moving averages of the rates with this time constant in steps (default: the rates)")


#: AgentConfig fields set by the biology flags (flag attribute -> field).
BIOLOGY_FLAGS = {
    "dale": "dale", "dale_mode": "dale_mode", "modulated": "modulated", "eligibility_tau": "eligibility_tau",
    "baseline_tau": "baseline_tau", "weight_init": "weight_init", "rule_every": "rule_every",
    "rate_average": "rate_average",
}


def _biology(args: argparse.Namespace, agent, task, seed: int):
    """The agent and task configs with the biology flags given applied (unset flags keep them)."""
    changes = {field: getattr(args, flag) for flag, field in BIOLOGY_FLAGS.items()
               if getattr(args, flag, None) is not None and getattr(args, flag) is not False}
    if getattr(args, "dale_mode", None) is not None and getattr(args, "dale", None) is None and agent.dale is None:
        raise ValueError("--dale-mode needs --dale FRACTION")
    for flag in ("eligibility_tau", "baseline_tau"):
        if getattr(args, flag, None) is not None and not (args.modulated or agent.modulated):
            raise ValueError(f"--{flag.replace('_', '-')} needs --modulated")
    if getattr(args, "dale_unbalanced", False):
        if getattr(args, "dale", None) is None and agent.dale is None:
            raise ValueError("--dale-unbalanced needs --dale FRACTION")
        changes["dale_balance"] = False
    if getattr(args, "dale", None) is not None:
        changes["dale_seed"] = seed
    if changes:
        agent = dataclasses.replace(agent, **changes)
    if getattr(args, "positive", False):
        task = dataclasses.replace(task, positive=True)
    return agent, task


def add_neuron_arguments(parser: argparse.ArgumentParser) -> None:
    """Spiking networks (spikehebb.network.spiking): ``--neuron lif`` and its options."""
    g = parser.add_argument_group("spiking networks (--neuron lif)")
    g.add_argument("--neuron", choices=("rate", "lif"),
                   help="'rate': the paper's tanh units (default); 'lif': each unit an on/off pair of leaky "
                        "integrate-and-fire neurons in Brian2, the rule reading spike traces")
    g.add_argument("--substeps", type=int, metavar="S",
                   help="with --neuron lif: substeps per env step (default: the control period in whole ms, "
                        "16 for the ant's 16.5 ms, 20 for the car's 20 ms)")
    g.add_argument("--dendrites", action="store_true",
                   help="with --neuron lif: two-compartment neurons, synaptic input on a dendrite coupled to the soma "
                        "through a saturating nonlinearity")
    g.add_argument("--spike-encoding", choices=("current", "poisson"),
                   help="with --neuron lif: inputs as injected current (deterministic, default) or Poisson spikes")
    g.add_argument("--poisson-seed", type=int, help="with --spike-encoding poisson: the seed of the input spikes")
    g.add_argument("--rule-each-substep", action="store_true",
                   help="with --neuron lif: apply the rule at every substep (dw/S) instead of once per env step")


#: LIF options set by the neuron flags (flag attribute -> LIFParams field, value).
NEURON_FLAGS = {"substeps": "substeps", "dendrites": "dendrites", "spike_encoding": "encoding",
                "poisson_seed": "poisson_seed", "rule_each_substep": "rule_every"}


def _neuron(args: argparse.Namespace, agent):
    """The agent config with ``--neuron`` and the LIF flags given applied (a lif run resumed keeps
    its neuron model; flags not given keep their values)."""
    from spikehebb.config import AgentConfig

    given = {field: getattr(args, flag) for flag, field in NEURON_FLAGS.items()
             if getattr(args, flag, None) is not None and getattr(args, flag) is not False}
    if given.get("rule_every"):
        given["rule_every"] = "substep"
    neuron = getattr(args, "neuron", None)
    lif = neuron == "lif" or (neuron is None and agent.kind == "lif")
    if given and not lif:
        raise ValueError(f"--{next(iter(given)).replace('_', '-')} is an option of spiking networks: add --neuron lif")
    if not lif:
        if agent.kind == "lif":  # --neuron rate on a lif config
            return AgentConfig(**{**agent.__dict__, "kind": "hebbian", "options": None})
        return agent
    if agent.kind not in ("hebbian", "lif"):
        raise ValueError(f"--neuron lif runs a Hebbian rule; it does not combine with a {agent.kind} agent")
    options = {**(agent.options or {}), **given} if agent.kind == "lif" else given
    return AgentConfig(**{**agent.__dict__, "kind": "lif", "options": options})


#: Flags that say where lifetimes run: free to change on --resume (numbers do not depend on them).
WHERE_FLAGS = ("workers", "evaluator", "ray", "batch_size")


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from parsed flags; explicit flags win over ``--paper``, which wins
    over the task's short default. With ``base`` (a resumed run's config), only the flags given
    change it: ``--paper`` there is the stored task's paper settings less its length (only an
    explicit ``--generations`` changes a resumed run's length)."""
    from spikehebb.agents import AGENTS
    from spikehebb.config import AgentConfig, EvaluatorConfig, TaskConfig

    # a resumed run keeps its task unless --task is typed (which resumed_config refuses where it differs)
    task_name = args.task if base is None or task_given(args) else base.task.name
    if base is None:
        fields = task_settings(task_name, args.paper)
    else:
        fields = task_settings(task_name, True) if args.paper else {}
        fields.pop("generations", None)
    for name in ("popsize", "generations", "max_env_steps", "lr", "sigma"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.train_variants:
        fields["train_variants"] = tuple(args.train_variants)
        if len(set(fields["train_variants"])) != len(fields["train_variants"]):
            raise ValueError(f"--train-variants names a body twice: {' '.join(fields['train_variants'])}")
    b = base or TrainConfig(
        task=TaskConfig(args.task), strategy=StrategyConfig(), agent=AgentConfig(), evaluator=EvaluatorConfig()
    )
    # a resumed run keeps the rest of its task (rates, episode rules set through the Python API)
    task = dataclasses.replace(b.task, name=task_name, train_variants=fields.get("train_variants", b.task.train_variants),
                               max_env_steps=fields.get("max_env_steps", b.task.max_env_steps))
    first_input = getattr(args, "first_input", None)
    if first_input is not None:
        task = task.with_first_input(first_input)
    floor = getattr(args, "fitness_floor", None)
    task = dataclasses.replace(task, fitness_floor=b.task.fitness_floor if floor is None else floor)
    agent = b.agent
    kind = getattr(args, "agent", None)
    if kind is not None and args.static and kind != "static":
        raise ValueError(f"--static and --agent {kind} contradict each other")
    _check_rule_flag(args.rule)
    ruleless = kind if kind is not None and not AGENTS[kind].takes_rule else "static" if args.static else None
    if ruleless and (args.rule is not None or args.coevolve):
        raise ValueError(f"a {ruleless} agent has no plasticity rule: drop --rule/--coevolve")
    if ruleless:  # static, lstm, gru, a plug-in's kind without a rule
        agent = AgentConfig(kind=ruleless, rule=None, backend=agent.backend, dtype=agent.dtype)
    elif kind not in (None, "hebbian") and kind != agent.kind:  # a plug-in's kind with a rule
        agent = AgentConfig(kind=kind, rule=args.rule or "ABCD_lr", evolve_initial_weights=args.coevolve,
                            backend=agent.backend, dtype=agent.dtype)
    elif (kind == "hebbian" and agent.kind != "hebbian") or args.rule is not None or args.coevolve:
        # the stored agent with what was typed changed (a resumed run's Dale's law, weight init, ... kept);
        # --rule/--coevolve keep a kind with a rule (lif), make any other Hebbian
        keep = kind in (None, agent.kind) and AGENTS[agent.kind].takes_rule
        agent = dataclasses.replace(agent, kind=agent.kind if keep else "hebbian",
                                    rule=args.rule or agent.rule or "ABCD_lr",
                                    evolve_initial_weights=args.coevolve or agent.evolve_initial_weights,
                                    **({} if keep else {"options": None}))
    if args.backend is not None:
        agent = AgentConfig(**{**agent.__dict__, "backend": args.backend})
    agent = _neuron(args, agent)
    agent, task = _biology(args, agent, task, args.seed if args.seed is not None else b.seed)
    if getattr(args, "coefficient_rows", None) is not None:
        if agent.kind != "hebbian":
            raise ValueError(f"--coefficient-rows is an option of Hebbian rate networks, not of a {agent.kind} agent")
        agent = dataclasses.replace(agent, coefficient_rows=args.coefficient_rows)
    shared = {name: getattr(args, name, None) for name in
              ("shared_rules", "rho", "assign", "noise", "optimizer", "lr_decay", "merge_every", "merge_fraction",
               "paired_seeds")}
    # --scale-lr N (0: off), else the short default's scaling unless --lr is given, else unchanged
    lr_reference = getattr(args, "lr_reference_popsize", None)
    if lr_reference is None and args.lr is None and (args.strategy or b.strategy.name) != "cma":
        lr_reference = fields.get("lr_reference_popsize")  # CMA-ES has no learning rate to scale
    if shared["shared_rules"] is not None or shared["rho"] is not None:
        if shared["shared_rules"] is not None and shared["rho"] is not None:
            raise ValueError("give --shared-rules M or --rho R, not both")
    elif any(shared[n] is not None for n in ("assign", "merge_every", "merge_fraction")) and not b.strategy.shares_rules:
        raise ValueError("--assign, --merge-every and --merge-fraction need --shared-rules M or --rho R")
    strategy = dataclasses.replace(
        b.strategy, name=args.strategy or b.strategy.name, popsize=fields.get("popsize", b.strategy.popsize),
        lr=fields.get("lr", b.strategy.lr), sigma=fields.get("sigma", b.strategy.sigma),
        **{n: v for n, v in shared.items() if v is not None},
        **({"rho": None} if shared["shared_rules"] is not None else {}),
        **({"shared_rules": None} if shared["rho"] is not None else {}),
        **({} if lr_reference is None else {"lr_reference_popsize": lr_reference or None}),
        **({} if getattr(args, "init", None) is None else {"init": args.init}),
    )
    name, address = args.evaluator or b.evaluator.name, b.evaluator.ray_address
    if args.ray and args.evaluator not in (None, "ray"):
        raise ValueError(f"--ray {args.ray} runs the lifetimes on Ray and --evaluator {args.evaluator} elsewhere: give one")
    if args.ray:
        name, address = "ray", None if args.ray == "local" else args.ray
    serial_from_other = name == "serial" and b.evaluator.name != "serial"  # a resume's count and timeouts stay behind
    if args.workers is not None:
        workers = args.workers
    else:
        workers = None if serial_from_other else b.evaluator.workers
    if name == "ray" and address is not None and workers is None:
        raise ValueError(f"--ray {address} needs --workers N, the number of actors (one CPU each) to start on the "
                         f"cluster: the batches are sized for it before Ray is reached")
    batch = args.batch_size if args.batch_size is not None else b.evaluator.batch_size
    timeouts = {}
    for field in ("stall_timeout", "build_timeout"):  # a resumed run keeps its own unless given
        given = getattr(args, field, None)
        timeouts[field] = ((STALL_TIMEOUT_S if serial_from_other else getattr(b.evaluator, field)) if given is None
                           else _seconds_or_never(f"--{field.replace('_', '-')}", given))
    _refuse_ignored_flags(args, agent, task, strategy, name)  # a resumed run's too: against its config
    return TrainConfig(
        task=task, agent=agent, strategy=strategy,
        evaluator=EvaluatorConfig(name, workers, address if name == "ray" else None, batch, **timeouts),
        generations=fields.get("generations", b.generations),
        seed=args.seed if args.seed is not None else b.seed,
        runs_dir=(args.runs_dir or DEFAULT_RUNS_DIR) if base is None else b.runs_dir,
        run_name=getattr(args, "run_name", None) if base is None else b.run_name, extra=b.extra,
        snapshot_every=b.snapshot_every,
    )


def _check_rule_flag(rule: str | None) -> None:
    """--rule's value: a registered rule's name (one line otherwise, where argparse's choices
    printed the whole usage); ``NAME+mod``, the run file's name of a three-factor rule, is
    pointed to --modulated."""
    from spikehebb.plugins import missing

    if rule is None or not missing(rule, RULES):
        return
    plain = rule.removesuffix(THREE_FACTOR_SUFFIX)
    if plain != rule and not missing(plain, RULES):
        raise ValueError(f"--rule {rule}: the three-factor version of a rule is --rule {plain} --modulated")
    raise ValueError(f"unknown --rule {rule!r}; expected one of {', '.join(RULES)}")


def _seconds_or_never(flag: str, text: str) -> float | None:
    """A timeout flag's value: a positive number of seconds, or None for 'never'."""
    if text.strip().lower() == "never":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{flag} takes a positive number of seconds or 'never', got {text!r}")
    return seconds


def _refuse_ignored_flags(args, agent, task, strategy, evaluator: str) -> None:
    """A one-line error for a flag the run (new, or resumed: its stored config with the flags
    applied) would accept and then ignore (design.md: flags that would be ignored are refused),
    whatever the value it gives."""
    from spikehebb.agents import draws_weights

    given = lambda name: getattr(args, name, None) is not None  # noqa: E731
    if strategy.name == "cma" and (given("lr") or given("lr_reference_popsize")):
        raise ValueError("CMA-ES has no learning rate (--sigma sets its first step size): drop --lr/--scale-lr")
    if given("noise") and (not strategy.shares_rules or strategy.assign == "merge"):
        raise ValueError("--noise sets how gmm and random shared rules are perturbed: it needs --shared-rules M or "
                         "--rho R with --assign gmm or random")
    if (given("merge_every") or given("merge_fraction")) and strategy.assign != "merge":
        raise ValueError("--merge-every and --merge-fraction set Evolve & Merge: they need --assign merge")
    workers = args.workers  # as typed (a resumed run's stored count is not the user's to drop)
    if evaluator == "serial" and isinstance(workers, int) and workers > 1:  # (below 1: EvaluatorConfig says so)
        raise ValueError(f"--evaluator serial runs every lifetime in this process: drop --workers {workers} "
                         "(or use --evaluator processes)")
    timeouts = [f"--{n.replace('_', '-')}" for n in ("stall_timeout", "build_timeout") if given(n)]
    if evaluator == "serial" and timeouts:
        raise ValueError(f"--evaluator serial runs every lifetime in this process, which no timeout stops: drop "
                         f"{' and '.join(timeouts)} (or use --evaluator processes)")
    if given("weight_init") and not draws_weights(agent, task.make()):
        raise ValueError(f"--weight-init draws a lifetime's random initial weights; this {agent.kind} run evolves its "
                         "weights" + (" (--coevolve)" if agent.evolve_initial_weights else "") + ": drop --weight-init")
    if given("backend") and agent.kind in ("lstm", "gru"):
        raise ValueError(f"--backend chooses how a rate network runs; the {agent.kind} agent runs in NumPy "
                         "whatever it says: drop --backend")
    if given("first_input") and task.make().episode.burn_in_steps == 0:
        raise ValueError(f"--first-input chooses what the network sees first after the burn-in; the {task.name} "
                         "has none: drop --first-input")


def parser_default_task(args: argparse.Namespace) -> str:
    """The --task default of the parser that made ``args`` (the script's own task)."""
    return getattr(args, "_default_task", "ant")


def task_given(args: argparse.Namespace) -> bool:
    """Whether --task was typed (not the parser's default, even where it names the same task);
    for flags not made by :func:`add_train_arguments`, whether it differs from the default."""
    typed = getattr(args, "_task_given", None)
    return args.task != parser_default_task(args) if typed is None else typed


def check_runs_dir(runs_dir: str | None) -> None:
    """``--runs-dir``: a directory, or one to be made (under one): a one-line error otherwise,
    before anything starts."""
    if runs_dir is None:
        return
    path = Path(runs_dir)
    for there in (path, *path.parents):
        if there.exists() or there.is_symlink():  # (a dangling link is no directory either)
            if not there.is_dir():
                under = "" if there == path else f", under {there}"
                raise ValueError(f"--runs-dir must be a directory (got {runs_dir}{under}, which is not one)")
            return


def resumed_config(args: argparse.Namespace) -> tuple[TrainConfig, int]:
    """``--resume RUNFILE``'s config (the stored one with the flags that may change) and the
    generations the file holds; a one-line error for a flag that a resumed run would ignore."""
    from spikehebb.store import RunStore

    if args.runs_dir is not None:
        raise ValueError(f"--runs-dir places a new run's file; a resumed run stays in {args.resume}: drop --runs-dir")
    if getattr(args, "run_name", None) is not None:
        raise ValueError(f"--run-name names a new run's file; a resumed run keeps {args.resume}: drop --run-name")
    with RunStore.open(args.resume) as store:
        stored = store.run_config()
        done = store.generations_completed
    if task_given(args) and args.task != stored.task.name:
        raise ValueError(f"--task {args.task} differs from the task of {args.resume}, {stored.task.name}; a resumed "
                         "run keeps its task: drop --task")
    if args.generations is not None and args.generations < done:
        raise ValueError(f"--generations {args.generations} is below the {done} generation(s) {args.resume} holds; "
                         f"give N > {done} to extend it (a run is not shortened)")
    return config_from_args(args, base=stored), done


def train_notes(args: argparse.Namespace) -> list[str]:
    """What ``train`` notes about its flags (without "note: "), said once the run starts."""
    notes = []
    if args.workers is not None and args.workers > 0 and args.popsize is not None and args.workers > args.popsize:
        notes.append(f"{args.workers} workers for {args.popsize} candidates: starting {args.popsize} "
                     "(a worker without candidates would only cost memory)")
    if args.paper and (args.static or args.agent == "static") and args.init is None and not args.resume:
        notes.append("the authors' static baseline (enajx/ES) started its search at torch's default weights, "
                     "U(+-1/sqrt(n_pre)) per layer; add --init fan_in for it (without: N(0, 1))")
    if args.paper and args.task == "ant" and getattr(args, "first_input", None) is None and not args.resume:
        notes.append("the authors' network saw the observation from before the 40 burn-in steps first; "
                     "add --first-input reset for it (without: the one after them)")
    return notes


def run_train(args: argparse.Namespace) -> Path:
    """Train (or resume) the run the flags say. Once every check passed and the run starts, its
    notes and ``run file: PATH`` go to stderr, so that an error is one line alone and the log of a
    run killed without a word (SIGKILL) still names the file to ``--resume``; that line is where
    a script finds the file. A run that ends well ends with :func:`trained_line` on stdout."""
    from spikehebb.train import train

    def started(path: Path) -> None:
        for note in train_notes(args):
            print(f"note: {note}", file=sys.stderr)
        print(f"run file: {path}", file=sys.stderr, flush=True)

    if args.resume:
        config, done = resumed_config(args)
        path = train(config, resume=args.resume, progress=not args.no_progress, started=started)
        if done >= config.generations:  # said after train accepted the flags
            print(f"note: {args.resume} already holds {done} generation(s), its length of {config.generations}; "
                  f"nothing to run (extend it with --generations N, N > {done})", file=sys.stderr)
        return path
    check_runs_dir(args.runs_dir)
    return train(config_from_args(args), progress=not args.no_progress, started=started)


def trained_line(path: Path) -> str:
    """What ``train`` and ``run_<task>.py`` print (stdout) once a run ends well: the run file
    ``path`` and what it now holds (:meth:`RunStore.totals <spikehebb.store.RunStore.totals>`:
    generations, env steps, wall time, best fitness, the last generation); its name alone,
    ``run file: PATH``, came on stderr as the run started."""
    from spikehebb.store import RunStore

    with RunStore.open(path) as store:
        return f"done: {path} holds {store.totals()}"


def add_evaluate_arguments(parser: argparse.ArgumentParser, first_input: bool = True) -> None:
    """``evaluate``'s flags; ``first_input=False`` leaves out ``--first-input`` for a parser that
    has train's (the run it trains is tested with its own)."""
    g = parser.add_argument_group("evaluation")
    g.add_argument("--morphology", "--variant", nargs="+", dest="variants", metavar="VARIANT",
                   help="variants to test (default: all of the task's)")
    g.add_argument("--episodes", type=int, default=100, help="lifetimes per variant (default: %(default)s; the paper reports 100)")
    g.add_argument("--which", choices=("mean", "best"), default="mean",
                   help="'mean': the search distribution's final mean, what the paper's code saves and "
                        "tests (default); 'best': the single best-scoring candidate seen in training")
    g.add_argument("--eval-steps", type=int, help="env steps per test lifetime (default: the task's full length, 1,000 for the ant and the car)")
    g.add_argument("--no-early-end", action="store_true",
                   help="run every test lifetime to the step limit: no early end after a fall or a run of negative "
                        "fitness terms (the authors' rules, kept by default); does the rule recover given the time?")
    if first_input:
        g.add_argument("--first-input", choices=FIRST_INPUTS,
                       help=f"what the test lifetimes' network sees at its first step, whatever the run trained "
                            f"with: {_FIRST_INPUT_CHOICES} (default: the run's own)")
    g.add_argument("--traces", action="store_true",
                   help="record per-step rates, actions, reward terms and weights of the first episode(s) of each variant "
                        "into the run file (plot them with `spikehebb plot RUNFILE --traces`)")
    g.add_argument("--overwrite-traces", action="store_true",
                   help="with --traces: replace the traces the run file already holds for these variants")
    g.add_argument("--trace-episodes", type=int, help="episodes per variant to record with --traces (default: 1)")
    g.add_argument("--trace-synapses", type=int, help="record this many randomly chosen synapses per layer (default: all)")
    g.add_argument("--eval-workers", type=int, help="processes for evaluation (default: one per core)")


def run_evaluate(path: str | Path, args: argparse.Namespace) -> str:
    from spikehebb.assess import load_run, without_early_ends
    from spikehebb.store import RunStore
    from spikehebb.store.traces import SEPARATE_FILE_ADVICE

    config, params = load_run(path, args.which)
    trained_first_input = config.task.make().episode.first_input
    if args.no_early_end:
        config = without_early_ends(config)
    if getattr(args, "first_input", None) is not None:
        config = dataclasses.replace(config, task=config.task.with_first_input(args.first_input))
    task = config.task.make()
    variants = check_evaluate_flags(args, task, config.agent)
    if args.traces:
        from spikehebb.lifetimes import is_shipped_model

        if task.episode.first_input != trained_first_input:
            raise ValueError(f"--traces records the run's own lifetimes into it, which trained with --first-input "
                             f"{trained_first_input}; drop --first-input {args.first_input} to record them")
        if is_shipped_model(path):
            raise ValueError(f"{path} is a shipped model and --traces would write into it; copy it first: "
                             f"cp {path} runs/ && spikehebb evaluate runs/{Path(path).name} --traces")
    # The writer lock, taken before the test lifetimes: a run another process writes fails now, not after them.
    store = RunStore.open(path, "a", advice=SEPARATE_FILE_ADVICE) if args.traces else None
    try:
        return _evaluate_and_trace(path, args, config, params, variants, store, trained_first_input)
    finally:
        if store is not None:
            store.close()


def check_evaluate_flags(args: argparse.Namespace, task, agent=None) -> list[str]:
    """``evaluate``'s flags against ``task`` (a :class:`~spikehebb.tasks.Task`) and, given, the
    run's ``agent`` (an :class:`~spikehebb.agents.AgentConfig`: whether ``--traces`` can record
    it): a one-line error for a bad one, before any lifetime runs; returns the variants to test
    (default: all)."""
    variants = list(task.check_variants(args.variants or task.variants))
    twice = repeated(variants)
    if twice:
        raise ValueError(f"--morphology names {', '.join(twice)} more than once; give each variant once")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    check_workers("--eval-workers", args.eval_workers, "one per core")
    check_eval_steps(args.eval_steps, task.episode.burn_in_steps)
    given = [flag for flag, value in (("--overwrite-traces", args.overwrite_traces or None),
                                      ("--trace-episodes", args.trace_episodes), ("--trace-synapses", args.trace_synapses))
             if value is not None]
    if given and not args.traces:
        raise ValueError(f"{given[0]} is an option of --traces: add --traces, or drop {given[0]}")
    if args.trace_episodes is not None and args.trace_episodes < 1:
        raise ValueError(f"--trace-episodes must be at least 1, got {args.trace_episodes}")
    if args.trace_synapses is not None and args.trace_synapses < 1:
        raise ValueError(f"--trace-synapses must be a positive count of synapses per layer (leave it out for all), "
                         f"got {args.trace_synapses}")
    if args.traces and agent is not None:
        from spikehebb.assess import check_traceable

        check_traceable(agent, "--traces")
    return variants


def check_traces_not_held(path: str | Path, args: argparse.Namespace, variants: list[str]) -> list[str]:
    """The traces ``path`` holds of ``variants`` (``--traces``): an error unless
    ``--overwrite-traces`` says to replace them."""
    from spikehebb.tracefile import trace_names

    held = [n for n in trace_names(path) if n.split("/")[0] in variants] if args.traces else []
    if held and not args.overwrite_traces:
        raise ValueError(f"{path} already holds traces ({', '.join(held)}); add --overwrite-traces to record them "
                         f"anew, or plot them with `spikehebb plot {path} --traces`")
    return held


def _evaluate_and_trace(path, args, config, params, variants, store, trained_first_input: str) -> str:
    """run_evaluate's test table and traces, with the run's writer lock held (``store``) when
    ``--traces``; traces held already are replaced in the recording's own transaction, so they are
    kept unless the new ones are written completely. ``trained_first_input``: what the run's
    network saw first in training (the table says so beside the tested one where either is
    ``"reset"``)."""
    import os

    from spikehebb.agents import lifetime_start
    from spikehebb.assess import assess, first_input_note, format_table, record_traces

    held = check_traces_not_held(path, args, variants)  # said before the test lifetimes, not after
    workers = args.eval_workers or os.cpu_count() or 1
    results = assess(config, params, variants, args.episodes, workers, args.eval_steps)
    label = config.agent.controller_label
    if config.strategy.shares_rules:
        label += f", shared rules {config.strategy.label}"
    rules = config.task.make(full_length=True).episode
    steps = rules.max_network_steps if args.eval_steps is None else args.eval_steps - rules.burn_in_steps
    table = format_table(results, label, config.task.name, steps, early_ends=not args.no_early_end,
                         start=lifetime_start(config.agent, config.task.make()))
    if "reset" in (rules.first_input, trained_first_input):
        table += "\n" + first_input_note(rules.first_input, trained_first_input)
    print(f"\n{path}: {args.which} parameters, seed {config.seed}")
    print(table)
    if args.traces:
        episodes = args.trace_episodes or 1  # the flag's default (None: refused without --traces)
        target = record_traces(path, config, params, variants, episodes, args.trace_synapses, args.eval_steps,
                               overwrite=bool(held), store=store)
        print(f"traces of {episodes} episode(s) per variant written to {target} (see docs/run-file.md)")
    return table


def _refuse_to_write_beside_a_model(path: str | Path, command: str, suffix: str) -> None:
    """A shipped model's figures and pages go where the user says, not into models/."""
    from spikehebb.lifetimes import is_shipped_model

    if is_shipped_model(path):
        raise ValueError(f"{path} is a shipped model and {command} would write beside it; give -o, e.g. "
                         f"-o runs/{Path(path).stem}{suffix}")


def run_plot(args: argparse.Namespace) -> list[Path]:
    """Fitness curves to ``-o`` (default RUN.png); with ``--traces`` the trace figures too. A
    traces-only file (``record_traces(into=...)``) has no training to show: its trace figures alone."""
    from spikehebb.plots import check_trace_names, check_trace_steps, plot_fitness, plot_traces, run_task
    from spikehebb.store import RunStore
    from spikehebb.tracefile import is_traces_file

    path = Path(args.runfile)
    if is_traces_file(path):
        if args.output:
            raise ValueError(f"-o names the fitness-curve PNG, and {path} is a traces file with no training to plot: "
                             "drop -o (its trace figures go beside it, or to --out-dir)")
        return plot_traces(path, args.out_dir, args.episodes, args.steps)  # checks everything before writing
    with RunStore.open(path) as store:
        history = store.history()
    if args.traces:  # every trace problem is said before the fitness figure is written
        names = check_trace_names(path, args.episodes)
        check_trace_steps(path, args.episodes or names, args.steps)
    elif args.episodes or args.steps or args.out_dir:
        raise ValueError("--episodes, --steps and --out-dir are options of --traces: add --traces, or drop them")
    out = Path(args.output) if args.output else path.with_suffix(".png")
    plot_fitness(history, path.name, run_task(path)).savefig(out, dpi=120)
    written = [out]
    if args.traces:
        written += plot_traces(path, args.out_dir, args.episodes, args.steps)
    return written


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUNFILE_OR_MODEL", help="a run file (.h5) or the name of a model in models/")
    parser.add_argument("-o", "--output", required=True, help="video file to write: .mp4 (H.264) or .gif")
    parser.add_argument("--variant", "--morphology", help="body or track variation to run (default: the task's first training variant)")
    parser.add_argument("--episode", type=int, default=0,
                        help="which test lifetime: episode k of `evaluate` (same initial weights and start; default: %(default)s)")
    parser.add_argument("--which", choices=("mean", "best"), default="mean",
                        help="parameters: the search mean (default) or the best candidate seen in training")
    parser.add_argument("--eval-steps", type=int, help="env steps of the lifetime incl. burn-in (default: the task's full length)")
    parser.add_argument("--every", type=int, help="one frame per this many network steps (default: 1 for .mp4, 3 for .gif)")
    parser.add_argument("--fps", type=float, help="playback frames per second (default: real time, at most 50 for .gif)")


def check_eval_steps(eval_steps: int | None, burn_in: int) -> None:
    """``--eval-steps`` counts env steps, the burn-in included: a one-line error, in the flag's
    words, for a length that leaves no network step."""
    if eval_steps is not None and eval_steps <= burn_in:
        raise ValueError(f"--eval-steps counts env steps with the {burn_in} burn-in steps: give more than {burn_in}, "
                         f"got {eval_steps}")


def run_video(args: argparse.Namespace) -> None:
    from spikehebb.assess import load_run
    from spikehebb.lifetimes import resolve_run
    from spikehebb.video import record_video

    config, _ = load_run(resolve_run(args.run))
    check_eval_steps(args.eval_steps, config.task.make().episode.burn_in_steps)

    info = record_video(args.run, args.output, args.variant, episode=args.episode, which=args.which,
                        max_env_steps=args.eval_steps, every=args.every, fps=args.fps)
    print(f"wrote {info.path}: {info.frames} frames at {info.fps:g} fps, {info.variant}, "
          f"{info.steps} network steps, fitness {info.fitness:.1f}")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runfile", metavar="RUNFILE_OR_MODEL", help="run file (.h5), or the name of a model in models/")
    parser.add_argument("-o", "--output", help="HTML file to write (default: the run file's name with .html)")
    parser.add_argument("--episodes", type=int, default=10, help="test lifetimes per variant for the test table (default: %(default)s)")
    parser.add_argument("--variant", "--morphology", nargs="+", dest="variants", metavar="VARIANT",
                        help="variants in the test table (default: the task's training and test variants)")
    parser.add_argument("--no-test", action="store_true", help="leave out the test table (no lifetimes are run)")
    parser.add_argument("--eval-workers", type=int, default=1, help="processes for the test lifetimes (default: %(default)s)")
    parser.add_argument("--video", nargs="+", metavar="FILE",
                        help="videos to embed, .mp4 or .gif (default: RUN.mp4 and RUN_<variant>.mp4 for the task's variants, and the same .gif, beside the run file)")
    parser.add_argument("--recovery", metavar="JSON",
                        help="recovery table of experiments/perturb_ant.py (default: RUN_recovery.json beside the run file, if there)")


def check_workers(flag: str, workers: int | None, default: str = "the default") -> None:
    """A process count: at least 1 (``None``: the command's ``default``, as the error names it)."""
    if workers is not None and workers < 1:
        raise ValueError(f"{flag} must be at least 1 (leave it out for {default}), got {workers}")


def run_report(args: argparse.Namespace) -> Path:
    from spikehebb.report import build_report

    check_workers("--eval-workers", args.eval_workers)

    return build_report(args.runfile, args.output, episodes=args.episodes, variants=args.variants,
                        workers=args.eval_workers, test=not args.no_test, videos=args.video, recovery=args.recovery)


def add_select_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runfile", help="run file (.h5) with stored search means (/snapshots, every 10th generation)")
    parser.add_argument("-o", "--output", required=True, help="the model file to write, e.g. models/ant_abcd_lr.h5 (one this run's select "
                                                             "left without its card gets the card)")
    parser.add_argument("--episodes", type=int, default=10,
                        help="selection lifetimes per training variant for each stored mean (default: %(default)s)")
    parser.add_argument("--test-episodes", type=int, default=100,
                        help="test lifetimes per variant for the model card's table (default: %(default)s, the paper's; 0: no card)")
    parser.add_argument("--workers", type=int, help="processes (default: one per core)")
    parser.add_argument("--command", dest="made_by", default="", help="the command that trained the run, for the card")
    parser.add_argument("--machine", default="this project's 2-core machine", help="where it trained, for the card")


def run_select(args: argparse.Namespace) -> Path:
    """Score the run's stored means, write the best as a model, then its card (``NAME.md``)."""
    import os

    from spikehebb.agents import lifetime_start
    from spikehebb.assess import assess, format_table, load_run
    from spikehebb.models import (card, check_model_output, check_not_model, check_not_training, export,
                                  model_without_card, select, selection_figure)
    from spikehebb.store.transaction import whole_file
    from spikehebb.report import paper_numbers

    for name in ("episodes", "test_episodes"):
        if getattr(args, name) < (1 if name == "episodes" else 0):
            raise ValueError(f"--{name.replace('_', '-')} must be at least {1 if name == 'episodes' else 0}, got {getattr(args, name)}")
    check_workers("--workers", args.workers)
    out = Path(args.output)
    if out.suffix != ".h5":
        raise ValueError(f"-o names the model's run file, NAME.h5 (its card is NAME.md beside it), got {out}")
    workers = args.workers or os.cpu_count() or 1
    if args.test_episodes and not out.exists():  # before any scoring: the card and curve never replace a file
        taken = [p for p in (out.with_suffix(".md"), out.with_name(out.stem + "_curve.png")) if p.exists()]
        if taken:
            raise FileExistsError(f"{taken[0]} already exists and would be replaced by the new model's "
                                  f"{'card' if taken[0].suffix == '.md' else 'curve'}; choose another name or move it away")
    if out.exists():
        # A select stopped after writing the model, before its card: make the card, keep the selection.
        info = model_without_card(out, args.runfile) if args.test_episodes else None
        if info is None:
            raise FileExistsError(f"{out} already exists; choose another name or remove it first")
        path = out
        print(f"{out} exists without its card: it keeps the mean it chose (generation {info['generation']}); "
              f"its card is made")
    else:
        check_not_training(Path(args.runfile))
        check_not_model(args.runfile)  # before the model's folder is made and any mean scored
        check_model_output(out, Path(args.runfile).stat().st_size)
        selection = select(args.runfile, args.episodes, workers)
        path = export(args.runfile, out, selection)
        print(f"wrote {path}: the mean after generation {selection.generations[selection.best]} "
              f"(selection fitness {selection.scores[selection.best]:.1f})")
    if args.test_episodes:
        config, params = load_run(path)
        task = config.task.make(full_length=True)  # the test lifetimes' length, not the training's
        results = assess(config, params, list(task.variants), args.test_episodes, workers)
        label = config.agent.controller_label
        if config.strategy.shares_rules:
            label += f", shared rules {config.strategy.label}"
        print(format_table(results, label, config.task.name, task.episode.max_network_steps,
                           start=lifetime_start(config.agent, task)))
        curve = path.with_name(path.stem + "_curve.png")
        with whole_file(curve, "write the curve") as tmp:
            selection_figure(path).savefig(tmp, dpi=100)
        paper = paper_numbers(config)
        text = card(path, results, args.made_by or f"spikehebb train ... (see {Path(args.runfile).name})",
                    args.machine, paper, curve.name)
        with whole_file(path.with_suffix(".md"), "write the card") as tmp:
            tmp.write_text(text)
        print(f"wrote {curve} and {path.with_suffix('.md')}")
    return path


def exit_interrupted(prog: str, err: KeyboardInterrupt) -> NoReturn:
    """End a study stopped by Ctrl-C, SIGTERM or SIGUSR1 with one line and the shell's code (130,
    143, 138).

    A study (several runs and their tests) resumes by itself: its run files keep every finished
    generation and its cache every finished test, so the advice is to run the same command again
    (not ``--resume``, which :class:`~spikehebb.train.TrainingInterrupted` names for one run).
    """
    what = getattr(err, "what", "interrupted")
    print(f"{prog}: {what}; the run files keep every finished generation: run the same command again to continue",
          file=sys.stderr)
    sys.exit(getattr(err, "exit_code", 130))


def _check_test_before_training(args: argparse.Namespace) -> None:
    """run_<task>.py's test flags, checked against the run it will train (or resume) before the
    training: a bad one costs a one-line error, not the training's time."""
    config = resumed_config(args)[0] if args.resume else config_from_args(args)
    variants = check_evaluate_flags(args, config.task.make(), config.agent)
    if args.resume:
        check_traces_not_held(args.resume, args, variants)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and Python's flush at exit would raise again
    (the recipe of Python's signal docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _load_plugins(parser: argparse.ArgumentParser) -> None:
    """The plug-ins (:mod:`spikehebb.plugins`), before the flags list the registries' names: one
    that fails to import ends the command in one line, whatever it would have run."""
    from spikehebb.plugins import load_plugins

    try:
        load_plugins()
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def experiment_main(task: str, description: str, argv: list[str] | None = None, episodes: int = 5) -> None:
    """What ``experiments/run_<task>.py`` does: train with the task's defaults and flags, then
    evaluate the run on every variant (``episodes`` test lifetimes each unless ``--episodes``)."""
    parser = argparse.ArgumentParser(description=description)
    _load_plugins(parser)
    add_train_arguments(parser, task=task)
    add_evaluate_arguments(parser, first_input=False)
    parser.set_defaults(episodes=episodes)
    args = parser.parse_args(argv)
    try:
        _check_test_before_training(args)
        with STOP_REQUEST:  # SIGUSR1 in the tests lets them finish: the script ends with them anyway
            path = run_train(args)
            print(trained_line(path))
            run_evaluate(path, args)
        sys.stdout.flush()  # here, not at exit: a reader gone meanwhile is caught below
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
        _quiet_stdout()
        parser.exit(1)
    except (ValueError, OSError, RuntimeError) as err:  # OSError: missing, existing, read-only, full (one line)
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except KeyboardInterrupt as err:  # 130 after Ctrl-C, 143 after SIGTERM, 138 after SIGUSR1 (TrainingInterrupted)
        parser.exit(getattr(err, "exit_code", 130), f"{parser.prog}: {str(err) or 'interrupted'}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spikehebb", description="Evolve Hebbian plasticity rules.")
    _load_plugins(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    from spikehebb.assess import FITNESS_UNITS, SOLVED_FITNESS

    fitness = "; ".join(f"{task}: {text}" for task, text in FITNESS_UNITS.items())
    p = sub.add_parser("train", help="train a rule (or static weights)",
                       description=f"Train a rule (or static weights). Fitness, per task: {fitness}.")
    add_train_arguments(p)
    p = sub.add_parser("evaluate", help="test a run's parameters on variants (the paper's Table 1)",
                       description="Test a run's parameters on variants, as the paper's Table 1: mean ± std "
                                   f"fitness over test lifetimes (a Hebbian rule's each from fresh random weights); the ant counts as solved at a mean of "
                                   f"{SOLVED_FITNESS:g}. Fitness, per task: {fitness}.")
    p.add_argument("runfile", metavar="RUNFILE_OR_MODEL",
                   help="run file (.h5) written by `spikehebb train`, or the name of a model in models/")
    add_evaluate_arguments(p)
    model = "a run file (.h5) or a shipped model's bare name (e.g. ant_abcd_lr, for models/ant_abcd_lr.h5)"
    p = sub.add_parser("inspect", help="summary of a run file",
                       description=f"Print a summary of {model}: its network, rule and settings, what it holds "
                                   "(generations, env steps, wall time, best fitness, the last generation) and its "
                                   "recorded traces; runs nothing.")
    p.add_argument("runfile", metavar="RUNFILE_OR_MODEL", help="run file (.h5), or the name of a model in models/")
    p = sub.add_parser("plot", help="fitness curves of a run to PNG; --traces: what the rule does in recorded lifetimes",
                       description=f"Plot the fitness curves of {model} to PNG; with --traces, also figures of each "
                                   "lifetime `evaluate --traces` recorded in it (weights, activity).")
    p.add_argument("runfile", metavar="RUNFILE_OR_MODEL",
                   help="run file (.h5), or the name of a model in models/; a traces file (record_traces(into=...)) "
                        "gets its trace figures only")
    p.add_argument("-o", "--output", help="fitness-curve PNG (default: the run file's name with .png)")
    p.add_argument("--traces", action="store_true",
                   help="also plot each recorded lifetime (`evaluate --traces`): weight matrices at chosen steps, "
                        "weight norms, activity, weight trajectory on its principal components; "
                        "files RUN_<variant>_ep<k>_<kind>.png")
    p.add_argument("--steps", nargs="+", type=int, metavar="T",
                   help="network steps at which to show the weight matrices (default: 0, 10, 100, the middle, the last)")
    p.add_argument("--episodes", nargs="+", metavar="VARIANT/episode_K",
                   help="recorded lifetimes to plot, e.g. damage_left/episode_0 (default: all)")
    p.add_argument("--out-dir", help="where the trace figures go (default: beside the run file)")
    p = sub.add_parser("video", help="render one test lifetime to .mp4 or .gif (headless)",
                       description=f"Render one test lifetime of {model} to .mp4 or .gif (-o), without a display: "
                                   "the same lifetime `evaluate` scores for that variant and episode.")
    add_video_arguments(p)
    p = sub.add_parser("report", help="one self-contained HTML page of a run: curves, test table, traces, recovery, videos",
                       description=f"Write one self-contained HTML page of {model}: fitness curves, a test table "
                                   "(runs test lifetimes unless --no-test), recorded traces and, given by flag, a "
                                   "recovery table and videos.")
    add_report_arguments(p)
    p = sub.add_parser("select", help="choose a run's rule as the authors did (the best stored search mean) and "
                                      "write it as a model, with a model card",
                       description="Choose the rule of a training run file (.h5, not a model) as the authors did: "
                                   "score its stored search means on test lifetimes, take the best, and write it as a "
                                   "model (-o) with a model card and a selection curve.")
    add_select_arguments(p)
    args = parser.parse_args(argv)
    try:
        if args.command in ("evaluate", "inspect", "plot", "report") and Path(args.runfile).suffix == "" \
                and not Path(args.runfile).exists():
            from spikehebb.lifetimes import resolve_run  # a shipped model by name, e.g. ant_abcd_lr

            args.runfile = str(resolve_run(args.runfile))
        if args.command in ("plot", "report") and not args.output:
            _refuse_to_write_beside_a_model(args.runfile, args.command, ".png" if args.command == "plot" else ".html")
        if args.command == "plot" and args.traces and not args.out_dir:  # the trace figures' default place too
            from spikehebb.lifetimes import is_shipped_model

            if is_shipped_model(args.runfile):
                raise ValueError(f"{args.runfile} is a shipped model and plot --traces would write its figures beside "
                                 f"it; give --out-dir, e.g. --out-dir runs/{Path(args.runfile).stem}")
        if args.command == "train":
            print(trained_line(run_train(args)))
        elif args.command == "evaluate":
            run_evaluate(args.runfile, args)
        elif args.command == "inspect":
            from spikehebb.models import model_info
            from spikehebb.store import RunStore

            with RunStore.open(args.runfile) as store:
                print(store.summary())
            if (info := model_info(args.runfile)) is not None:
                scores = info["selection"]["scores"]
                print(f"model: the search mean after generation {info['generation']} (selection fitness "
                      f"{scores[str(info['generation'])]:.1f}), the best of {len(scores)} stored means; /mean holds it")
        elif args.command == "plot":
            print("wrote " + ", ".join(map(str, run_plot(args))))
        elif args.command == "video":
            run_video(args)
        elif args.command == "report":
            print(f"wrote {run_report(args)}")
        elif args.command == "select":
            run_select(args)
        sys.stdout.flush()  # here, not at exit: a reader gone meanwhile is caught below
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
        _quiet_stdout()
        return 1
    except (ValueError, OSError, RuntimeError) as err:  # OSError: missing, existing, read-only, full (one line)
        parser.exit(2, f"spikehebb {args.command}: error: {err}\n")
    except KeyboardInterrupt as err:  # train says where the run stands and how to resume it (exit 128 + the signal);
        # a plain Ctrl-C's KeyboardInterrupt has no text, and an exception is true even so: test its str
        parser.exit(getattr(err, "exit_code", 130), f"spikehebb {args.command}: {str(err) or 'interrupted'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
