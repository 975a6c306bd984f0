"""What a rollout adds to the physics, and what a second worker process buys.

Times, in one run, per worker process (member-steps per second, burn-in steps included):

- ``env only``: B AntBulletEnvs reset and stepped in a loop with random actions, the floor
- ``env only, rollout's actions``: the same loop replaying the actions the rollout below takes
  (zero during the burn-in). The physics costs more when the legs flail: a standing ant has other
  contacts than one driven by U[-1, 1] torques, so this is the like-for-like floor
- ``rollout``: :meth:`Rollout.run` of B members (Brian2 network, float32, ABCD_lr) on the same
  number of env steps; target >= 0.8 of ``env only``
- ``network only``: the same network run alone (its callback feeds back fixed inputs), to split
  the rollout's overhead into network and per-step Python (encoder, decoder, bookkeeping)

and one generation at population ``--popsize`` with :class:`ProcessEvaluator` at 1 and 2 workers
(``worker_batch_size`` members per batch), after a warm-up generation that builds the envs, the
two timed in turns; target speed-up >= 1.7x (on a machine with at least 2 free cores: timings on
a shared machine drift with its load, so every number is the best of ``--repeats``). Episodes run their full length (no early end), so every member steps the
same number of times. Network and env construction are excluded from every timing. Usage::

    python experiments/bench_rollout.py [--batch 64] [--steps 300] [--popsize 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from spikehebb.envs.ant import AntBulletEnv
from spikehebb.es import get_strategy
from spikehebb.agents import AgentConfig
from spikehebb.config import EvaluatorConfig, TaskConfig, WorkerSpec
from spikehebb.evaluators import ProcessEvaluator
from spikehebb.network import sample_weights
from spikehebb.rollout import Rollout
from spikehebb.rules import get_rule
from spikehebb.tasks import get_task

RULE = "ABCD_lr"
BURN_IN = 40


def episode_rules(steps: int) -> dict:
    """``steps`` env steps per member, burn-in included, none ended early."""
    return {"max_env_steps": steps, "burn_in_steps": BURN_IN, "grace_steps": steps}


def worker_batch_size(popsize: int, workers: int) -> int:
    return EvaluatorConfig(workers=workers).batch(popsize)


def time_envs(envs, actions: np.ndarray) -> float:
    """Seconds to reset every env and step env b with ``actions[t, b]`` for every t."""
    start = time.perf_counter()
    for b, env in enumerate(envs):
        env.reset(seed=b)
    for step_actions in actions:
        for env, action in zip(envs, step_actions):
            env.step(action)
    return time.perf_counter() - start


def random_actions(steps: int, batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps, batch, 8)).astype(np.float32)


def rollout_actions(rollout, arrays, steps: int) -> np.ndarray:
    """The actions a rollout takes, burn-in zeros first: ``(steps, B, 8)``."""
    actions = np.zeros((steps, rollout.batch_size, 8), np.float32)
    hook = lambda t, agent, a, infos: actions.__setitem__(BURN_IN + t, a)
    rollout.run("default", source(*arrays), env_seeds=list(range(rollout.batch_size)), on_step=hook)
    return actions


def rollout_arrays(task, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = get_rule(RULE).k
    coefficients = [rng.normal(0, 0.01, (batch, a, b, k)) for a, b in zip(task.sizes[:-1], task.sizes[1:])]
    return coefficients, sample_weights(task.sizes, batch, rng=rng)


def source(coefficients, weights):
    """The rollout's ``parts(i)`` for per-layer arrays with one row per lifetime."""
    return lambda i: {"coefficients": [c[i : i + 1] for c in coefficients], "weights": [w[i : i + 1] for w in weights]}


def time_rollout(rollout, arrays) -> tuple[float, int]:
    start = time.perf_counter()
    result = rollout.run("default", source(*arrays), env_seeds=list(range(rollout.batch_size)))
    return time.perf_counter() - start, result.env_steps


def time_network(network, steps: int, seed: int = 0) -> float:
    inputs = np.random.default_rng(seed).normal(0, 1, (network.population, network.sizes[0]))
    start = time.perf_counter()
    network.run(inputs, steps, lambda t, outputs: inputs)
    return time.perf_counter() - start


def time_generations(steps: int, popsize: int, repeats: int, worker_counts=(1, 2)) -> dict[int, float]:
    """(best wall time, cores its workers used during it) of one generation per number of
    workers, the evaluators open side by side and timed in turns (the machine's load drifts),
    after a warm-up generation each. Cores used below the number of workers means the workers
    waited for a CPU: the machine was busy with something else."""
    evaluators = {}
    try:
        for workers in worker_counts:
            rules = episode_rules(steps)
            task = TaskConfig("ant", ("default",), rules.pop("max_env_steps"), rules)
            spec = WorkerSpec(task, batch_size=worker_batch_size(popsize, workers))
            evaluators[workers] = ProcessEvaluator(spec, workers=workers)
        strategy = get_strategy("openai-es", n_params=spec.genome().n_params, popsize=popsize, seed=0)
        keys, sampler = strategy.ask(), strategy.sampler()
        for evaluator in evaluators.values():
            evaluator.evaluate(sampler, keys)  # warm-up: every worker makes its envs
        times: dict[int, list[tuple[float, float]]] = {w: [] for w in evaluators}
        for _ in range(repeats):
            for workers, evaluator in evaluators.items():
                cpu = cpu_seconds(evaluator.pids)
                start = time.perf_counter()
                evaluator.evaluate(sampler, keys)
                wall = time.perf_counter() - start
                times[workers].append((wall, (cpu_seconds(evaluator.pids) - cpu) / wall))
    finally:
        for evaluator in evaluators.values():
            evaluator.close()
    return {w: min(t) for w, t in times.items()}


def cpu_seconds(pids) -> float:
    """CPU seconds (user + system) the processes have used so far (Linux /proc; NaN elsewhere)."""
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="members per lockstep batch (B)")
    parser.add_argument("--steps", type=int, default=300, help="env steps per episode, burn-in included")
    parser.add_argument("--popsize", type=int, default=64, help="population of the timed generation")
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions (best kept)")
    parser.add_argument("--skip-generation", action="store_true", help="only the per-worker part")
    args = parser.parse_args()
    B, steps = args.batch, args.steps
    member_steps = B * steps

    task = get_task("ant", episode=episode_rules(steps))
    envs = [AntBulletEnv() for _ in range(B)]
    rollout = Rollout(task, AgentConfig(rule=RULE), B)
    arrays = rollout_arrays(task, B)
    replay = rollout_actions(rollout, arrays, steps)
    time_envs(envs, replay[:5])  # warm-up

    timings: dict[str, list[float]] = {"env only": [], "env only, rollout's actions": [], "rollout": []}
    net_t = []
    for r in range(args.repeats):  # interleaved, best of each
        timings["env only"].append(time_envs(envs, random_actions(steps, B, seed=r)))
        timings["env only, rollout's actions"].append(time_envs(envs, replay))
        seconds, env_steps = time_rollout(rollout, arrays)
        assert env_steps == member_steps, (env_steps, member_steps)
        timings["rollout"].append(seconds)
        net_t.append(time_network(rollout.agent.network, steps - BURN_IN))
    best = {name: min(t) for name, t in timings.items()}
    for env in envs:
        env.close()
    rollout.close()

    env_s, replay_s, roll_s = best["env only"], best["env only, rollout's actions"], best["rollout"]
    print(f"per worker: B = {B}, {steps} env steps per member ({BURN_IN} burn-in), best of {args.repeats}")
    print(f"{'':28} {'member-steps/s':>15} {'us/member-step':>15} {'env only / this':>16}")
    for name, seconds in best.items():
        print(f"{name:28} {member_steps / seconds:15,.0f} {1e6 * seconds / member_steps:15.1f} {env_s / seconds:16.2f}")
    net_us = 1e6 * min(net_t) / member_steps  # network steps only after the burn-in
    rest_us = 1e6 * (roll_s - replay_s) / member_steps - net_us
    print(f"rollout - env (its actions) per member-step: network {net_us:.1f} us (alone, in one run() call), "
          f"the rest {rest_us:.1f} us (encoder, decoder, callback, bookkeeping, run() set-up)")
    ratio, like = env_s / roll_s, replay_s / roll_s
    print(f"rollout / env only = {ratio:.2f} (target >= 0.8: {'met' if ratio >= 0.8 else 'MISSED'}); "
          f"rollout / env with its actions = {like:.2f}")

    if args.skip_generation:
        return
    print()
    print(f"one generation, population {args.popsize}, ProcessEvaluator (best of {args.repeats}, after a warm-up)")
    print(f"{'workers':>8} {'batch':>6} {'seconds':>8} {'member-steps/s':>15} {'speed-up':>9} {'cores used':>11}")
    best = time_generations(steps, args.popsize, args.repeats)
    for workers, (t, cores) in best.items():
        batch = worker_batch_size(args.popsize, workers)
        print(f"{workers:8} {batch:6} {t:8.2f} {args.popsize * steps / t:15,.0f} {best[1][0] / t:9.2f} {cores:11.2f}")
    speed_up = best[1][0] / best[2][0]
    print(f"speed-up 2 vs 1 workers = {speed_up:.2f} (target >= 1.7: {'met' if speed_up >= 1.7 else 'MISSED'})")
    if best[2][1] < 1.8:
        print(f"note: the 2 workers had {best[2][1]:.2f} cores between them: the machine was busy with other work")


if __name__ == "__main__":
    main()
