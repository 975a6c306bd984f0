"""One real training generation against the physics it runs, and where the rest of the time goes.

Times, in one run, generations of the real training loop: the ant task (default + damage_right,
up to 1,000 env steps per lifetime, the authors' early ends), OpenAI-ES candidates of generation 0
(coefficients N(0, 1) + 0.1 noise), ABCD_lr, the Brian2 network, ``--workers`` worker processes.
Two ways of sharing a generation among the workers are timed side by side, in turns:

- ``shared``: the default: every worker claims the next lifetime from a counter they share;
- ``chunks``: each worker gets a fixed half of the lifetimes (the previous scheme).
- ``whole``: the shared scheme without compaction: every batch steps all its slots until its
  last lifetime ends (the loop before live lifetimes were moved into a prefix at the tail).

``--agent`` picks the agent (the Hebbian network, or the static, LSTM or GRU baselines).
``--from RUNFILE`` times a generation of a real run instead: its task, agent and seed, and the
first ``--popsize`` candidates of the generation it would run next (its strategy restored from the
file: its search mean and its decayed sigma). A trained ant walks, touches the floor with more
feet and lives all 1,000 steps, so the physics per env step and the split differ from generation 0.

Inside every worker each env step's time is split by wrapping the calls in the worker process:
``physics`` (pybullet's setJointMotorControlArray + stepSimulation), ``env rest`` (the rest of
``env.step``: state reads, reward terms), ``network`` (the agent's step), ``rollout`` (encoder,
decoder, episode rules, resets and burn-ins outside the env's step, the claim of lifetimes) and
``idle`` (a worker's share of the wall time in which it used no CPU: waiting for the others, the
parent, the pipe). It also prints the slot use: the share of the member-steps the batched network
computed that served a live lifetime (a batch steps every slot until its last lifetime ends). The
figure of merit is the physics share per core:

    physics seconds of all workers / (wall seconds x workers)

i.e. the loop's env-step rate per core relative to what the same steps cost in bare physics
(target >= 0.85), and the cores the workers used through the generation (target >= 1.9 of 2).

    python experiments/bench_train.py [--popsize 64] [--workers 2] [--repeats 2] [--max-env-steps 1000]
    python experiments/bench_train.py --from models/training/ant_ABCD_lr_paper_pop200_s0.h5 --schemes shared whole --repeats 1

Do not run it beside a training run: every number is wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from spikehebb.agents import AgentConfig
from spikehebb.config import EvaluatorConfig, TaskConfig, WorkerSpec
from spikehebb.es import get_strategy
from spikehebb.evaluators import ProcessEvaluator, split_evenly
from spikehebb.worker import Worker, mean_over_variants

PARTS = ("physics", "env rest", "network", "rollout", "idle")
SCHEMES = ("shared", "chunks", "whole")


class TimedWorker(Worker):
    """A :class:`Worker` that adds up, in its process, the seconds spent in the physics, the
    rest of the env's step and the network's step, and its busy time per request."""

    def __init__(self, spec: WorkerSpec):
        super().__init__(spec)
        import pybullet

        from spikehebb.envs.ant import AntBulletEnv

        self.seconds = dict.fromkeys(("physics", "env", "network", "busy", "member steps"), 0.0)
        seconds = self.seconds
        stepped = [spec.batch_size]  # slots the network steps now (a prefix after compaction)

        def timed(function, key):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    seconds[key] += time.perf_counter() - start
                    if key == "network":
                        seconds["member steps"] += stepped[0]

            return wrapper

        pybullet.stepSimulation = timed(pybullet.stepSimulation, "physics")
        pybullet.setJointMotorControlArray = timed(pybullet.setJointMotorControlArray, "physics")
        AntBulletEnv.step = timed(AntBulletEnv.step, "env")
        agent = self.rollout.agent
        agent.step = timed(agent.step, "network")
        if getattr(agent, "can_compact", False):
            set_active = agent.set_active

            def counted_set_active(n):
                stepped[0] = spec.batch_size if n is None else n
                set_active(n)

            agent.set_active = counted_set_active
        self.train_lifetimes = timed(self.train_lifetimes, "busy")

    def compaction(self, on: bool) -> None:
        """Turn the rollout's compaction of a generation's tail on or off."""
        self.rollout.compact_tail = bool(on)

    def timings(self) -> dict[str, float]:
        """Seconds since the last call (physics, env incl. physics, network, busy); reset after."""
        out = dict(self.seconds)
        for key in self.seconds:
            self.seconds[key] = 0.0
        return out


def cpu_seconds(pids) -> float:
    """CPU seconds (user + system) the processes have used so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def chunked(evaluator: ProcessEvaluator, sampler, keys) -> tuple[np.ndarray, int]:
    """The previous scheme: a fixed, equal share of the lifetimes per worker."""
    n_variants = len(evaluator.spec.make_task().train_variants)
    items = split_evenly(list(range(len(keys) * n_variants)), evaluator.workers)
    done, steps = {}, 0
    for part, s in evaluator._map("evaluate_items", [(sampler, keys, chunk) for chunk in items]):
        done.update(part)
        steps += s
    return mean_over_variants(done, len(keys), n_variants), steps


def time_generation(evaluator: ProcessEvaluator, how: str, sampler, keys) -> dict:
    evaluator._map("compaction", [(how != "whole",)] * evaluator.workers)
    evaluator._map("timings", [()] * evaluator.workers)  # reset the counters
    cpu0 = cpu_seconds(evaluator.pids)
    start = time.perf_counter()
    if how == "chunks":
        fitness, env_steps = chunked(evaluator, sampler, keys)
    else:
        fitness, env_steps = evaluator.evaluate(sampler, keys)
    wall = time.perf_counter() - start
    cpu = cpu_seconds(evaluator.pids) - cpu0
    per_worker = evaluator._map("timings", [()] * evaluator.workers)
    total = {k: sum(t[k] for t in per_worker) for k in per_worker[0]}
    capacity = wall * evaluator.workers
    split = {
        "physics": total["physics"],
        "env rest": total["env"] - total["physics"],
        "network": total["network"],
        "rollout": total["busy"] - total["env"] - total["network"],
        "idle": capacity - total["busy"],
    }
    # Slot use: the env steps the network's batched steps served (burn-in steps have no network
    # step), over the member-steps it computed (every slot it stepped, live or not: all B, or the
    # prefix the rollout compacted its live lifetimes into at a generation's tail).
    burn_in = evaluator.spec.make_task().episode.burn_in_steps
    n_lifetimes = len(keys) * len(evaluator.spec.make_task().train_variants)
    slot_use = (env_steps - burn_in * n_lifetimes) / total["member steps"]
    return {"wall": wall, "env_steps": env_steps, "cores": cpu / wall, "split": split, "capacity": capacity,
            "fitness": fitness, "busy": [t["busy"] for t in per_worker], "slot_use": slot_use}


def next_generation(path: str, popsize: int, batch: int):
    """The worker spec, sampler and first ``popsize`` keys of the generation the run at ``path``
    would run next (its strategy restored from its last checkpoint), and a line saying what it is."""
    from spikehebb.store import RunStore
    from spikehebb.train import run_genome

    with RunStore.open(path) as store:
        config = store.run_config()
        checkpoint = store.load_checkpoint()
        done = store.generations_completed
    if checkpoint is None:
        raise SystemExit(f"{path} holds no finished generation yet: nothing to time")
    strategy = config.make_strategy(run_genome(config).n_params)
    strategy.load_state_dict(checkpoint.strategy_state)
    keys, sampler = strategy.ask(), strategy.sampler()
    if not 1 <= popsize <= len(keys):
        raise SystemExit(f"--popsize must be 1 to the run's population {len(keys)}, got {popsize}")
    spec = dataclasses.replace(config.worker_spec(), batch_size=batch)
    what = (f"generation {done} of {path} ({config.agent.controller_label}, "
            f"<= {config.task.max_env_steps} env steps per lifetime)")
    return spec, sampler, keys[:popsize], what


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed generations per scheme (best kept)")
    parser.add_argument("--max-env-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, help="slots per worker (default: training's, popsize / workers in equal batches of at most 64)")
    parser.add_argument("--agent", choices=("hebbian", "static", "lstm", "gru"), default="hebbian",
                        help="the agent (default: %(default)s, ABCD_lr in Brian2)")
    parser.add_argument("--from", dest="run", metavar="RUNFILE",
                        help="time the next generation of this run (its first --popsize candidates) instead of generation 0")
    parser.add_argument("--schemes", nargs="+", choices=SCHEMES, default=list(SCHEMES),
                        help="ways of sharing the generation to time (default: all; shared is always timed)")
    args = parser.parse_args()

    batch = args.batch_size or EvaluatorConfig(workers=args.workers).batch(args.popsize)
    if args.run:
        spec, sampler, keys, what = next_generation(args.run, args.popsize, batch)
    else:
        task = TaskConfig("ant", None, args.max_env_steps)
        agent = AgentConfig() if args.agent == "hebbian" else AgentConfig(kind=args.agent, rule=None)
        spec = WorkerSpec(task, agent, batch_size=batch)
        strategy = get_strategy("openai-es", n_params=spec.genome().n_params, popsize=args.popsize, seed=0)
        keys, sampler = strategy.ask(), strategy.sampler()
        what = (f"generation 0, <= {args.max_env_steps} env steps per lifetime, "
                f"{'Brian2 ABCD_lr' if args.agent == 'hebbian' else args.agent} float32")
    schemes = ["shared", *(how for how in args.schemes if how != "shared")]
    with ProcessEvaluator(spec, workers=args.workers, worker_factory=TimedWorker) as evaluator:
        evaluator.evaluate(sampler, keys)  # warm-up: every worker makes its envs
        results: dict[str, list[dict]] = {how: [] for how in schemes}
        for _ in range(args.repeats):
            for how in results:
                results[how].append(time_generation(evaluator, how, sampler, keys))
    for how in schemes[1:]:  # every scheme computes the same generation
        np.testing.assert_array_equal(results["shared"][0]["fitness"], results[how][0]["fitness"])

    print(f"one generation: population {len(keys)}, {len(keys) * 2} lifetimes (2 training bodies), {what}, "
          f"{args.workers} workers x {batch} slots; best of {args.repeats}")
    print(f"{'scheme':8} {'wall s':>7} {'env steps':>10} {'steps/s/core':>13} {'cores':>6} "
          + " ".join(f"{p:>9}" for p in PARTS) + f" {'physics/core':>13}")
    best = {}
    for how, runs in results.items():
        r = min(runs, key=lambda r: r["wall"])
        best[how] = r
        shares = {p: r["split"][p] / r["capacity"] for p in PARTS}
        rate = r["env_steps"] / r["wall"] / args.workers
        print(f"{how:8} {r['wall']:7.1f} {r['env_steps']:10,} {rate:13,.0f} {r['cores']:6.2f} "
              + " ".join(f"{shares[p]:9.1%}" for p in PARTS) + f" {shares['physics']:13.2f}")
    r = best["shared"]
    steps = r["env_steps"]
    bare = steps / r["split"]["physics"]  # env steps per second of physics time (one core)
    print(f"\nper env step (shared): physics {1e6 * r['split']['physics'] / steps:.1f} us, env rest "
          f"{1e6 * r['split']['env rest'] / steps:.1f} us, network {1e6 * r['split']['network'] / steps:.1f} us, "
          f"rollout {1e6 * r['split']['rollout'] / steps:.1f} us, idle {1e6 * r['split']['idle'] / steps:.1f} us "
          f"(bare physics alone: {bare:,.0f} env steps/s per core)")
    print(f"slot use: {r['slot_use']:.0%} of the member-steps the network computed served a live lifetime "
          f"(the rest: idle slots stepped with the batch before the tail's compaction)")
    share = r["split"]["physics"] / r["capacity"]
    env_share = (r["split"]["physics"] + r["split"]["env rest"]) / r["capacity"]
    print(f"loop / env steps alone (physics + env rest) per core = {env_share:.2f}")
    print(f"loop / bare physics per core = {share:.2f} (target >= 0.85: {'met' if share >= 0.85 else 'MISSED'}); "
          f"cores used {r['cores']:.2f} (target >= 1.9: {'met' if r['cores'] >= 1.9 else 'MISSED'})")
    if "chunks" in best:
        print(f"shared vs chunks wall: {best['chunks']['wall'] / r['wall']:.2f}x")
    if "whole" in best:
        print(f"compaction (shared vs whole) wall: {best['whole']['wall'] / r['wall']:.2f}x, network per env step "
              f"{1e6 * best['whole']['split']['network'] / best['whole']['env_steps']:.1f} -> "
              f"{1e6 * r['split']['network'] / steps:.1f} us")


if __name__ == "__main__":
    main()
