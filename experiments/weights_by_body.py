"""Does the rule organise the weights differently on each body? The cosine similarity of the
whole weight vector (every synapse of every layer) at one network step, between test lifetimes.

Each body runs ``--episodes`` of the test lifetimes ``spikehebb evaluate`` scores (episodes 0, 1,
...: fresh random initial weights and starts), here without early ends and only up to
``--step`` (so that every lifetime reaches it; up to then they are the same as the evaluated
ones). Within a
body the lifetimes share only the body; across bodies, nothing. Prints the matrix, each
lifetime's fitness over its first ``--step`` steps, and the mean similarity within each body and
between each pair; ``--out`` draws the matrix.

    python experiments/weights_by_body.py [MODEL] [--variants default damage_right damage_left]
        [--episodes 3] [--step 300] [--out docs/img/ant_abcd_lr_weights_by_body.png]
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import numpy as np

from spikehebb.assess import load_run
from spikehebb.lifetimes import Lifetimes, resolve_run, weights_of


def weights_at(lives: Lifetimes, variant: str, episodes: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Each lifetime's weights after network step ``step``, flattened over layers ``(episodes,
    n_synapses)``, and its fitness over steps 0 .. ``step`` ``(episodes,)``."""
    taken: list[np.ndarray] = []
    fitness = np.zeros(episodes)

    def hook(t, network, actions, infos):
        for b, info in enumerate(infos[:episodes]):
            if info is not None and t <= step:
                fitness[b] += lives.fitness_term(info)
        if t == step:
            taken.append(np.concatenate([w[:episodes].reshape(episodes, -1) for w in weights_of(lives.controller)], axis=1))

    lives.run(variant, range(episodes), hook)
    return taken[0], fitness


def cosines(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of rows ``(n, n)``."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="ant_abcd_lr", help="run file or model name (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=["default", "damage_right", "damage_left"],
                        help="bodies (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=3, help="test lifetimes per body (default: %(default)s)")
    parser.add_argument("--step", type=int, default=300, help="network step at which to compare (default: %(default)s)")
    parser.add_argument("--out", help="PNG of the matrix (default: none)")
    args = parser.parse_args(argv)
    try:
        if args.episodes < 2:
            raise ValueError(f"--episodes must be at least 2 (similarity within a body), got {args.episodes}")
        config, _ = load_run(resolve_run(args.model))
        task = config.task.make(full_length=True)
        task.check_variants(args.variants)
        if config.agent.kind == "static":
            raise ValueError(f"{args.model} holds static weights: nothing organises them")
        if not 0 <= args.step < task.episode.max_network_steps:
            raise ValueError(f"--step must be in 0 .. {task.episode.max_network_steps - 1} (network steps of a "
                             f"lifetime), got {args.step}")
        # no early ends, so every lifetime reaches the step; nothing after it is needed
        lives = Lifetimes(args.model, batch_size=args.episodes, early_ends=False,
                          max_env_steps=task.episode.burn_in_steps + args.step + 1)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")

    start = time.perf_counter()
    vectors, fitness, labels = [], [], []
    with lives:
        for variant in args.variants:
            w, f = weights_at(lives, variant, args.episodes, args.step)
            vectors.append(w)
            fitness.append(f)
            labels += [f"{variant} {e}" for e in range(args.episodes)]
    matrix = cosines(np.concatenate(vectors))
    n, k = len(args.variants), args.episodes
    print(f"{args.model}: cosine similarity of the weights after network step {args.step}, {k} test lifetimes "
          f"per body, without early ends ({time.perf_counter() - start:.0f} s)")
    for variant, f in zip(args.variants, fitness):
        print(f"  fitness over steps 0-{args.step}, {variant}: {', '.join(f'{x:.1f}' for x in f)}")
    width = max(len(s) for s in labels)
    print(" " * width + "  " + " ".join(f"{i:>5d}" for i in range(len(labels))))
    for i, (label, row) in enumerate(zip(labels, matrix)):
        print(f"{label:<{width}}  " + " ".join(f"{x:5.3f}" for x in row) + f"  ({i})")
    block = lambda a, b: matrix[a * k:(a + 1) * k, b * k:(b + 1) * k]
    for a, variant in enumerate(args.variants):
        within = block(a, a)[np.triu_indices(k, 1)]
        print(f"within {variant}: mean {within.mean():.3f} (min {within.min():.3f})")
    for a, b in combinations(range(n), 2):
        across = block(a, b)
        print(f"{args.variants[a]} vs {args.variants[b]}: mean {across.mean():.3f} (max {across.max():.3f})")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1.2 + 0.5 * len(labels), 0.8 + 0.5 * len(labels)))
        image = ax.imshow(matrix, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for x in range(1, n):
            ax.axhline(x * k - 0.5, color="white", lw=1)
            ax.axvline(x * k - 0.5, color="white", lw=1)
        ax.set_title(f"cosine of the weights after step {args.step}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
