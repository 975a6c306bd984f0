"""The whole method in one file: evolve a Hebbian rule for a random network that walks the Ant.

Najarro & Risi 2020 in four steps, through spikehebb's public pieces (the env, the network, the
rule's layout) and none of its machinery (no workers, no run file, no lockstep batches):

1. a candidate is one vector of per-synapse rule coefficients (eta, A, B, C, D for each of the
   12,288 synapses of a 28-128-64-8 tanh network: 61,440 numbers);
2. its fitness is one lifetime: the weights start random, U[-0.1, 0.1], and change after every
   step by dw_ij = eta_ij * (A_ij o_i o_j + B_ij o_i + C_ij o_j + D_ij); the fitness is the summed
   progress term of the Ant (the ant never sees it: no reward inside a lifetime);
3. OpenAI-ES: mirrored Gaussian perturbations of the mean, centred ranks of their fitness, and a
   step along the rank-weighted noise;
4. repeat. The paper runs population 500 for 300 generations; this script's defaults take a few
   minutes and show the loop, not a walking ant (``spikehebb train`` is the real thing).

    python experiments/minimal_ant.py [--popsize 8] [--generations 3] [--steps 300]
"""

import argparse

import numpy as np

from spikehebb.envs.ant import AntBulletEnv
from spikehebb.es import centred_ranks, failures_as_worst
from spikehebb.network import make_network, sample_weights
from spikehebb.rules import n_coefficients, unflatten_coefficients

SIZES = (28, 128, 64, 8)  # the paper's ant network
RULE = "ABCD_lr"  # eta, A, B, C, D per synapse
BURN_IN = 40  # zero-action steps before the network acts (the ant settles)
GRACE = 200  # network steps before a fall or walking backwards ends a lifetime
PATIENCE = 30  # consecutive negative progress steps that end a lifetime after the grace


def lifetime(coefficients: np.ndarray, network, env: AntBulletEnv, seed: int, steps: int) -> float:
    """One lifetime of the rule ``coefficients`` (flat, 61,440): fresh random weights, the
    network and the rule acting step by step; returns the summed progress term."""
    rng = np.random.default_rng(seed)
    network.reset(unflatten_coefficients(coefficients, SIZES, RULE), sample_weights(SIZES, 1, rng=rng))
    obs, _ = env.reset(seed=seed)
    for _ in range(BURN_IN):
        obs = env.step(np.zeros(8))[0]
    fitness, negative = 0.0, 0
    for t in range(steps):
        action = network.step(obs[None])[0]  # forward pass, then the rule updates the weights
        obs, _, fell, _, info = env.step(action)
        progress = info["reward_progress"]
        fitness += progress
        negative = negative + 1 if progress < 0 else 0
        if t > GRACE and (fell or negative > PATIENCE):
            break
    return fitness


def es_step(mean: np.ndarray, noise: np.ndarray, fitness: np.ndarray, lr: float, sigma: float) -> np.ndarray:
    """The new mean after one generation: candidates ``mean + sigma * noise`` (noise (P, n), in
    mirrored pairs) scored ``fitness`` (P,). A failed lifetime (NaN or an infinity) counts as the
    worst (-inf), as in spikehebb's strategies; if every candidate ties there is no step."""
    penalised = failures_as_worst(fitness) - 0.01 * np.mean((mean + sigma * noise) ** 2, axis=1)  # the authors' L2 penalty
    shaped = centred_ranks(penalised)
    if not shaped.any():
        return mean
    shaped = shaped / shaped.std()  # the authors standardise the ranks
    return mean + lr / (len(noise) * sigma) * shaped @ noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popsize", type=int, default=8, help="candidates per generation (even)")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="network steps per lifetime at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.popsize < 2 or args.popsize % 2:
        parser.error(f"--popsize must be an even number >= 2 (mirrored pairs), got {args.popsize}")

    rng = np.random.default_rng(args.seed)
    n = n_coefficients(SIZES, RULE)
    mean = rng.normal(0.0, 1.0, n)  # the authors start the coefficients at N(0, 1)
    lr, sigma = 0.2, 0.1  # Najarro & Risi 2020; decayed x0.995 and x0.999 per generation
    network = make_network(SIZES, RULE, population=1)  # the rule as Brian2 equations, compiled to C++
    env = AntBulletEnv()
    for generation in range(args.generations):
        half = rng.standard_normal((args.popsize // 2, n))
        noise = np.concatenate([half, -half])  # mirrored pairs
        seeds = rng.integers(0, 2**31, args.popsize)
        fitness = np.array([
            lifetime(mean + sigma * eps, network, env, int(seed), args.steps) for eps, seed in zip(noise, seeds)
        ])
        mean = es_step(mean, noise, fitness, lr, sigma)
        lr, sigma = lr * 0.995, sigma * 0.999
        print(f"generation {generation}: fitness mean {fitness.mean():7.2f}, best {fitness.max():7.2f}")
    env.close()


if __name__ == "__main__":
    main()
