"""How well an evolved rule (or static network) does: test lifetimes per variant, as in the
paper's Table 1, and synapse traces of chosen lifetimes.

Every lifetime starts from fresh random weights (seeded by (run seed, episode, variant), never
a training seed; agents whose weights are all evolved start from those and from the task's
seeded random start), runs the task's episode rules, and scores the task's fitness
(:data:`FITNESS_UNITS`). The ant's fitness is the summed ``reward_progress`` term of pybullet's
Ant: each step's decrease of the body centre's distance to the walk target (1 km along +x)
divided by the step length 0.0165 s, i.e. a potential difference, not metres; summed over a
lifetime it is the net approach to the target in metres / 0.0165 s, so 100 is 1.65 m. A variant
counts as solved when the mean fitness reaches the task's ``solved_fitness``, by default
:data:`SOLVED_FITNESS` (Najarro & Risi 2020 call an ant morphology solved at 100 of these units;
the car: 900, gymnasium's reward threshold for CarRacing).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from spikehebb.config import TrainConfig, WorkerSpec
from spikehebb.envs.mirror import body_roles
from spikehebb.evaluators import (deaf_to_ctrl_c, exit_with_parent, one_thread_per_library, sigint_blocked,
                                  sigusr1_blocked, stop_process)
from spikehebb.rollout import BatchResult
from spikehebb.store import RunStore, TraceWriter
from spikehebb.store.traces import SEPARATE_FILE_ADVICE
from spikehebb.tasks import FIRST_INPUT_WORDS
from spikehebb.worker import EVALUATION_TAG, Worker, lifetime_seeds

#: Mean fitness at which a variant counts as solved (Najarro & Risi 2020).
SOLVED_FITNESS = 100.0

#: The legend line of a table with failed lifetimes (:attr:`VariantResult.failed`).
FAILED_NOTE = ("failed: the lifetime's network outputs turned non-finite (or, in a broken simulation, its observation, "
               "fitness term or modulator) and it ended with fitness NaN; a row with failures gives mean ± std over the "
               "others and applies the solved criterion to their mean.")

#: What follows :data:`FAILED_NOTE` where a row says at which network step its lifetimes failed
#: (:attr:`VariantResult.steps` known).
FAILED_STEP_NOTE = "at network step s: in the lifetime's s-th network step, counted from 1 without the burn-in steps."

#: The tables' "seen" column for each body role (:data:`~spikehebb.envs.mirror.BODY_ROLES`).
SEEN = {"trained": "yes", "mirror of trained": "mirror", "unseen": "no"}

#: What a task's fitness is, in words (README, help texts, tables and figures say it this way).
FITNESS_UNITS = {
    "ant": "summed reward_progress: net approach to the target in m / 0.0165 s (100 = 1.65 m)",
    "car": "summed env reward: +1000/N per new track tile of N, -0.1 per frame",
}


def without_early_ends(config: TrainConfig) -> TrainConfig:
    """The run's config with test lifetimes that end only at the step limit: neither a run of
    negative fitness terms nor a fall ends one (``spikehebb evaluate --no-early-end``; an env that
    cannot go on after ``terminated``, the car's, still ends there: :meth:`Task.no_early_end`).
    The fitness sums every step the lifetime runs."""
    episode = dict(config.task.episode or {}, **config.task.make().no_early_end())
    return replace(config, task=replace(config.task, episode=episode))


@dataclass
class VariantResult:
    """Test fitness of one variant: one value per episode."""

    variant: str
    fitness: np.ndarray
    role: str
    """What the body is to the run (:func:`~spikehebb.envs.mirror.body_roles`): "trained",
    "unseen", or "mirror of trained", where a mirror-symmetric rule (``--coefficient-rows
    mirror``) was trained on its left-right mirror image: it meets this body as it met that one,
    so the score is no test of generalisation."""
    solved_at: float = SOLVED_FITNESS
    """Mean fitness at which the variant counts as solved (the task's, else the ant's 100)."""
    steps: np.ndarray | None = None
    """Network steps each lifetime lived, in :attr:`fitness`'s shape (a failed lifetime's: the
    1-based network step at which it failed, :attr:`~spikehebb.rollout.BatchResult.steps`);
    None where not known (the rows then do not say where lifetimes failed)."""

    def __post_init__(self) -> None:
        if self.role not in SEEN:
            raise ValueError(f"role must be one of {tuple(SEEN)}, got {self.role!r}")
        if self.steps is not None and np.shape(self.steps) != np.shape(self.fitness):
            raise ValueError(f"steps must give each lifetime's network steps, shape {np.shape(self.fitness)} as "
                             f"fitness, got shape {np.shape(self.steps)}")

    @property
    def trained_on(self) -> bool:
        """Whether the run was trained on this body."""
        return self.role == "trained"

    @property
    def seen(self) -> str:
        """The tables' "seen" column: "yes" (trained on), "mirror" (mirror of trained) or "no"."""
        return SEEN[self.role]

    @property
    def mean(self) -> float:
        """Mean fitness over every lifetime: NaN when one failed (:attr:`failed`)."""
        return float(np.mean(self.fitness))

    @property
    def std(self) -> float:
        return float(np.std(self.fitness))

    @property
    def solved(self) -> bool:
        return self.mean >= self.solved_at

    @property
    def failed(self) -> int:
        """Lifetimes that failed: their network's outputs (or, in a broken simulation, their
        observation, fitness term or modulator) turned non-finite and they ended with fitness NaN
        (:mod:`spikehebb.rollout`)."""
        return int(np.count_nonzero(~np.isfinite(self.fitness)))

    @property
    def finite(self) -> np.ndarray:
        """The fitness of the lifetimes that did not fail."""
        return self.fitness[np.isfinite(self.fitness)]

    @property
    def finite_mean(self) -> float:
        """Mean fitness over the lifetimes that did not fail (NaN when all did)."""
        return float(np.mean(self.finite)) if self.finite.size else float("nan")

    @property
    def finite_std(self) -> float:
        """Their standard deviation (ddof 0, as the paper's tables; NaN when all failed)."""
        return float(np.std(self.finite)) if self.finite.size else float("nan")

    @property
    def solved_finite(self) -> bool:
        """The solved criterion on :attr:`finite_mean` (the tables say so in a row with failures)."""
        return self.finite_mean >= self.solved_at

    def spread(self) -> tuple[str, str]:
        """(mean, std) over the lifetimes that did not fail, as a table writes them ("-" when all did)."""
        if self.failed == len(self.fitness):
            return "-", "-"
        return f"{self.finite_mean:.1f}", f"{self.finite_std:.1f}"

    def solved_cell(self) -> str:
        """"yes" or "no", and how many lifetimes failed (:meth:`failed_note`)."""
        return ("yes" if self.solved_finite else "no") + self.failed_note()

    def cells(self) -> tuple[str, str]:
        """("mean ± std", "solved") as a table's cells (:meth:`spread`, :meth:`solved_cell`)."""
        return " ± ".join(self.spread()), self.solved_cell()

    def failed_note(self) -> str:
        """What a table row adds when lifetimes failed: ``" (1 of 100 failed: mean, std and solved over
        the other 99)"``, with where they failed when :attr:`steps` is known (:meth:`failed_at`):
        ``" (1 of 100 failed at network step 412: mean, ...)"``; ``""`` when none did."""
        n, failed = len(self.fitness), self.failed
        if not failed:
            return ""
        note = f" ({failed} of {n} failed{self.failed_at()}"
        if failed == n:
            return note + ")"
        return note + f": mean, std and solved over the other {n - failed})"

    def failed_at(self) -> str:
        """At which network steps the failed lifetimes failed, as :meth:`failed_note` says it:
        ``" at network step 412"`` (one), ``", all at network step 2"``, ``", at network steps 3, 13
        and 15"`` (up to three failed), ``", at network steps 3 to 57, median 12"`` (more); ``""`` when
        :attr:`steps` is not known or none failed."""
        if self.steps is None:
            return ""
        at = sorted(int(s) for s in np.asarray(self.steps)[~np.isfinite(self.fitness)])
        if not at:
            return ""
        if len(at) == 1:
            return f" at network step {at[0]}"
        if at[0] == at[-1]:
            return f", all at network step {at[0]}"
        if len(at) <= 3:
            return f", at network steps {', '.join(map(str, at[:-1]))} and {at[-1]}"
        median = f"{np.median(at):.1f}".removesuffix(".0")  # a whole step, or halfway between two
        return f", at network steps {at[0]} to {at[-1]}, median {median}"


def load_run(path: str | Path, which: str = "mean") -> tuple[TrainConfig, np.ndarray]:
    """The config and the ``"mean"`` (the search distribution's final centre, what the paper tests)
    or ``"best"`` (the highest raw fitness seen in training) parameters."""
    if which not in ("best", "mean"):
        raise ValueError(f"which must be 'best' or 'mean', got {which!r}")
    with RunStore.open(path) as store:
        config = store.run_config()
        checkpoint = store.load_checkpoint()
    if checkpoint is None:
        raise ValueError(f"{path} holds no finished generation yet, so no parameters to evaluate")
    from spikehebb.models import model_info

    if which == "best" and model_info(path) is not None:
        # a model's /best is its source run's, from any generation: not what the model ships
        raise ValueError(f"{path} is a model: it holds the search mean it chose; the best candidate "
                         "of its run is in the run file (evaluate that with --which best)")
    return config, checkpoint.best_params if which == "best" else checkpoint.mean


def _test_spec(config: TrainConfig, batch_size: int, max_env_steps: int | None) -> WorkerSpec:
    """The worker of test lifetimes: the run's task with the task's full lifetime length (or
    ``max_env_steps``), whatever the training length."""
    task = replace(config.task, max_env_steps=max_env_steps)
    return WorkerSpec(task, config.agent, batch_size, config.seed)


def _variant_job(spec: WorkerSpec, params: np.ndarray, variant: str, episodes: int) -> BatchResult:
    """One variant's test lifetimes in a process of :func:`assess`'s pool."""
    worker = Worker(spec, full_length=spec.task.max_env_steps is None)
    try:
        return worker.test_lifetimes(params, variant, range(episodes))
    finally:
        worker.close()


def _start_variant_process() -> None:
    """Initializer of :func:`assess`'s processes, as the training workers' start: deaf to Ctrl-C
    (the parent stops them) and gone with the parent. SIGUSR1 stays blocked from birth
    (:func:`~spikehebb.evaluators.sigusr1_blocked`)."""
    deaf_to_ctrl_c()
    exit_with_parent()


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """End ``pool`` now, its variants unfinished (Ctrl-C, or a variant's error): terminate its
    processes, then shut it down. Its manager thread sees them gone and fails the futures left, and
    its call queue's feeder thread, which may wait to send a variant's parameters to a process
    that no longer reads them, ends too: neither can block interpreter exit. (Futures are never
    cancelled here: the manager thread of Python 3.11 fails on a cancelled one and leaves the
    feeder blocked for ever.)"""
    processes = list((pool._processes or {}).values())  # no public way before Python 3.14's terminate_workers()
    for process in processes:  # all at once, then each waited for
        process.terminate()
    for process in processes:
        stop_process(process)
    pool.shutdown(wait=True)


def assess(
    config: TrainConfig,
    params: np.ndarray,
    variants: Sequence[str],
    episodes: int = 100,
    workers: int = 1,
    max_env_steps: int | None = None,
) -> list[VariantResult]:
    """Fitness of ``params`` over ``episodes`` lifetimes on each variant (in parallel over
    variants when ``workers > 1``). ``max_env_steps`` overrides the run's episode length; by
    default the task's full length is used, not the (possibly shortened) training length. Each
    result holds every lifetime's network steps too (:attr:`VariantResult.steps`)."""
    spec = _test_spec(config, min(episodes, 32), max_env_steps)
    task = spec.make_task(full_length=max_env_steps is None)
    variants = task.check_variants(variants)
    if workers <= 1:
        worker = Worker(spec, full_length=max_env_steps is None)
        try:
            batches = []
            for v in variants:
                batches.append(worker.test_lifetimes(params, v, range(episodes)))
                worker.rollout.close(v)
        finally:
            worker.close()
    else:
        ctx = multiprocessing.get_context("spawn")
        # One variant per process, each closing its envs when done (a worker pool would keep every
        # variant's envs, ~30 MB each); one BLAS thread each, deaf to Ctrl-C and gone with this
        # process even when it is killed mid-variant, as the training workers.
        pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(variants)), mp_context=ctx,
                                                      initializer=_start_variant_process)
        try:
            with one_thread_per_library(), sigusr1_blocked(), sigint_blocked():  # the first submit starts them
                futures = [pool.submit(_variant_job, spec, params, v, episodes) for v in variants]
            batches = [f.result() for f in futures]
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown()
    roles = body_roles(variants, task.train_variants, mirror_rule=config.agent.coefficient_rows == "mirror")
    solved_at = SOLVED_FITNESS if task.solved_fitness is None else task.solved_fitness
    return [VariantResult(v, b.fitness, roles[v], solved_at, b.steps) for v, b in zip(variants, batches)]


def seen_note(results: Sequence[VariantResult]) -> str:
    """What the "seen" column means, with "mirror" explained when a row has it."""
    seen = "seen: trained on that variant"
    if any(r.role == "mirror of trained" for r in results):
        seen += ("; mirror: trained on its left-right mirror image, and the rule is mirror-symmetric, so it meets this "
                 "body as it met that one (no test of generalisation)")
    return seen + "."


def failed_legend(results: Sequence[VariantResult]) -> str:
    """The legend of a table's failed lifetimes: :data:`FAILED_NOTE`, then :data:`FAILED_STEP_NOTE`
    when a row with failures says where they failed; ``""`` when no lifetime failed."""
    failed = [r for r in results if r.failed]
    if not failed:
        return ""
    return FAILED_NOTE + (f" {FAILED_STEP_NOTE}" if any(r.steps is not None for r in failed) else "")


def format_table(
    results: Sequence[VariantResult],
    label: str,
    task: str | None = None,
    max_network_steps: int | None = None,
    early_ends: bool = True,
    start: str = "fresh random weights",
) -> str:
    """The paper's Table 1 layout: variant, seen in training, mean ± std over the episodes,
    solved; then what the columns mean (the fitness in words when ``task`` is given, the episode
    length when ``max_network_steps`` is; ``early_ends=False``: lifetimes ran to the step limit,
    :func:`without_early_ends`; ``start``: what each lifetime starts from,
    :func:`spikehebb.agents.lifetime_start` of the run's agent). A row whose lifetimes failed
    gives mean ± std over the others and says how many failed, and where when known
    (:meth:`VariantResult.failed_note`, legend :func:`failed_legend`)."""
    n = len(results[0].fitness) if results else 0
    episodes = f"{n} episode" + "s" * (n != 1)
    head = label + f" ({episodes})"
    width = max(26, len(head))  # "mean ± std" is 26 wide: a longer label widens the column
    seen_width = max([5, *(len(r.seen) + 1 for r in results)])  # 5 unless a row says "mirror"
    lines = [f"{'variant':<20} {'seen':<{seen_width}} {head:>{width}}  solved"]
    for r in results:
        mean, std = r.spread()
        lines.append(
            f"{r.variant:<20} {r.seen:<{seen_width}} {mean:>{width - 9}} ± {std:<6}  "
            f"{r.solved_cell()}"
        )
    solved_at = results[0].solved_at if results else SOLVED_FITNESS
    lines.append(f"{seen_note(results)} mean ± std over {n} lifetime" + "s" * (n != 1) + f", each from {start}.")
    lines.append(f"solved: mean fitness >= {solved_at:g}." + (f" fitness: {FITNESS_UNITS[task]}." if task in FITNESS_UNITS else ""))
    legend = failed_legend(results)
    if legend:
        lines.append(legend)
    if max_network_steps is not None:
        if early_ends:
            lines.append(f"episodes: at most {max_network_steps:,} network steps (fewer when the task's rules end one early).")
        else:
            lines.append(f"episodes: at most {max_network_steps:,} network steps, no early end by the task's rules (--no-early-end).")
    return "\n".join(lines)


def first_input_note(tested: str, trained: str) -> str:
    """The line under a test table that says what the network saw first (``tested``) and what it
    saw first in training (``trained``), each ``"settled"`` or ``"reset"``."""
    if tested == trained:
        return f"first input: {FIRST_INPUT_WORDS[tested]} ({tested}, as in training)."
    return f"first input: {FIRST_INPUT_WORDS[tested]} (--first-input {tested}; the run trained with {trained})."


def check_traceable(agent, what: str = "record_traces") -> None:
    """A one-line error unless lifetimes of ``agent`` (an :class:`~spikehebb.agents.AgentConfig`)
    can be traced. A trace holds per step each layer's rates and each weight layer's
    ``(n_pre, n_post)`` matrix (:class:`spikehebb.store.TraceWriter`'s layout): what the network
    agents (Hebbian, spiking, static) have; an LSTM's or GRU's gates and recurrent state do not
    fit it. ``what`` names the caller in the message (``"--traces"``)."""
    from spikehebb.agents import AGENTS, NetworkAgent

    if not issubclass(AGENTS[agent.kind], NetworkAgent):
        kinds = ", ".join(k for k, cls in AGENTS.items() if issubclass(cls, NetworkAgent))
        raise ValueError(f"{what} records the rates and weight matrices of Hebbian (plastic-weight) networks and "
                         f"their static and spiking kin (agent kinds {kinds}); the recurrent layer of "
                         f"this {agent.kind} run does not fit them, so it records no traces")


def record_traces(
    path: str | Path,
    config: TrainConfig,
    params: np.ndarray,
    variants: Sequence[str],
    episodes: int = 1,
    synapses: int | None = None,
    max_env_steps: int | None = None,
    into: str | Path | None = None,
    overwrite: bool = False,
    store: RunStore | None = None,
) -> Path:
    """Record per-step rates, actions, reward terms and weights of the first ``episodes``
    lifetimes of each variant (the same lifetimes :func:`assess` scores) into the run file, or
    into ``into`` (a traces file). ``synapses``: record a fixed random subsample of that many
    synapses per layer instead of all. ``overwrite``: replace the traces the file already holds
    for these variants; the old ones are kept unless the new ones are written completely (one
    transaction). ``store``: the run opened for writing (``RunStore.open(path, "a")``) by a caller
    that took the writer lock already; it stays open (not with ``into``). Returns the file written."""
    if int(episodes) < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if synapses is not None and int(synapses) < 1:
        raise ValueError(f"synapses must be None (all) or a positive count, got {synapses}")
    if into is not None and store is not None:
        raise ValueError("record_traces writes into the run file through store, or into a traces file: give store or into, not both")
    check_traceable(config.agent)
    target = Path(into) if into is not None else Path(path)
    own_store = into is None and store is None
    if own_store:
        # the writer lock, taken before any lifetime runs
        store = RunStore.open(path, "a", advice=SEPARATE_FILE_ADVICE)
    worker = None
    try:
        spec = _test_spec(config, 1, max_env_steps)
        worker = Worker(spec, full_length=max_env_steps is None)
        task = worker.task
        variants = task.check_variants(variants)
        # Biology-minded agents (spikehebb.biology): the modulator m(t) the rule read is recorded as
        # one more reward term, "modulator"; Dale's signs go into each episode's attributes.
        modulated = bool(getattr(getattr(worker.rollout.agent, "network", None), "modulated", False))
        terms = tuple(task.reward_terms) + (("modulator",) if modulated else ())
        signs = _dale_meta(config.agent, task.sizes)
        writer_kwargs = dict(sizes=task.sizes, n_actions=task.n_actions, reward_terms=terms, synapses=synapses,
                             replace=variants if overwrite else ())
        writer = store.trace_writer(**writer_kwargs) if store is not None else TraceWriter(target, **writer_kwargs)
        with writer:
            for variant in variants:
                v = task.variants.index(variant)
                for e in range(episodes):
                    path_key = (EVALUATION_TAG, e, v)
                    # the rules the lifetime ran under (--eval-steps, --no-early-end change them)
                    episode = writer.episode(variant, e, seed=lifetime_seeds(spec.seed, *path_key)[1], run_seed=spec.seed,
                                             first_input=task.episode.first_input,
                                             episode_rules=json.dumps(asdict(task.episode)), **signs)
                    recorder = _TraceRecorder(episode, task.reward_terms, worker.initial_weights(params, path_key), modulated)
                    fitness, _ = worker.lifetimes(params[None], variant, [path_key], recorder)
                    _write_spike_counts(episode, recorder.spikes)
                    episode.end(float(fitness[0]))
                worker.rollout.close(variant)
    finally:
        if worker is not None:
            worker.close()
        if own_store:
            store.close()
    return target


def _write_spike_counts(episode, spikes: list) -> None:
    """A spiking agent's spike counts into the episode: ``spikes/layer_l`` ``(T, n_l, 2)`` int16,
    the spikes of each unit's on and off neuron in every env step (nothing for rate agents)."""
    if not spikes:
        return
    for l, counts in enumerate(zip(*spikes)):
        episode.write(f"spikes/layer_{l}", np.asarray(counts, dtype=np.int16))


class _TraceRecorder:
    """Rollout step hook writing member 0's step into an episode trace."""

    def __init__(self, episode, reward_terms: Sequence[str], initial_weights: list[np.ndarray], modulated: bool = False):
        self.episode, self.reward_terms = episode, tuple(reward_terms)
        self.weights = initial_weights  # the weights of the coming forward pass
        self.spikes: list = []  # a spiking agent's spike counts: per step, per layer (n_l, 2)
        self.modulated = modulated

    def __call__(self, t, agent, actions, infos) -> None:
        info = infos[0]
        if info is None:  # member 0 has ended; the batch runs on for others
            return
        rates = [a[0] for a in agent.activations()]
        terms = {k: info[k] for k in self.reward_terms}
        if self.modulated:  # m(t) the rule read in this step (the signal minus its baseline)
            terms["modulator"] = float(agent.network.modulator[0])
        self.episode.step(rates, actions[0], terms, self.weights)
        # The hook runs after the rule: what the agent holds now drives the next pass.
        self.weights = [w[0] for w in agent.weights()]
        if hasattr(agent, "spike_counts"):  # a spiking agent: member 0's spikes of this env step
            self.spikes.append([c[0] for c in agent.spike_counts()])


def _dale_meta(agent, sizes) -> dict:
    """Episode attributes ``dale_signs_L`` (+1 E, -1 I per unit of layer L, inputs first) of an
    agent with Dale's law and, with E/I balance, ``dale_gains_L`` (the gain each unit of layer L
    sends with; the efficacy of a synapse of synaptic layer L is ``dale_gains_L[i] * w_ij``,
    layers 0 .. L-1 of units have gains); none otherwise."""
    if getattr(agent, "dale", None) is None:
        return {}
    from spikehebb.biology import dale_constraint

    constraint = dale_constraint(sizes, agent.dale, agent.dale_mode, agent.dale_seed, agent.dale_balance)
    meta = {f"dale_signs_{l}": s for l, s in enumerate(constraint.signs)}
    if constraint.balance:
        meta.update({f"dale_gains_{l}": constraint.input_gain(l) for l in range(len(sizes) - 1)})
    return meta
