"""How close are a run's rule coefficients to those of a left-right mirror-symmetric network?

A network is mirror-symmetric when every synapse's coefficients equal its mirror synapse's with the
signs of :mod:`spikehebb.agents.mirror` (field f of synapse (i, j) = s_i^a s_j^b times field f of
(pi(i), pi(j))). The Ant fixes the mirror of the 28 inputs and 8 actions; a hidden unit's mirror
image is whichever unit (and sign: tanh is odd) the rule makes it, so for each hidden layer in
turn this finds the pairing that matches the coefficients best (scipy's linear_sum_assignment on
the coefficient profiles, the layer below's pairing fixed; no unit its own image), then scores each layer as the cosine
between its coefficients and their mirror images (each field scaled to unit RMS first): 1 for a
mirror-symmetric rule (``--coefficient-rows mirror`` runs read through the network's tied rows),
about what the null gives for a rule with no mirror structure.

The null: the same search with the inputs' and actions' mirror replaced by a mirror of the same
shape pairing the wrong units (the real one relabelled by a random permutation: the same number
of units that are their own image, with the same signs), so that what any search over 128! pairings
finds in coefficients with no mirror structure is scored alike. ``--from-start`` scores what
evolution changed (the stored mean less the search's initial mean) instead of the coefficients.

    python experiments/rule_symmetry.py models/training/ant_ABCD_lr_paper_pop200_s0.h5 \\
        [--every 5] [--nulls 20] [--from-start] [--out runs/symmetry.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

#: A layer's mirror of units: (source, sign), unit u's image being sign[u] * unit[source[u]].
UnitMap = tuple[np.ndarray, np.ndarray]


def parity_exponents(parities: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per field, the exponents (a, b) of s_pre^a s_post^b, as two int arrays (k,)."""
    return np.array([p[0] for p in parities]), np.array([p[1] for p in parities])


def mirror_image(coefficients: np.ndarray, pre: UnitMap, post: UnitMap, parities) -> np.ndarray:
    """The coefficients ``(n_pre, n_post, k)`` of each synapse's mirror synapse, with its signs."""
    a, b = parity_exponents(parities)
    (pre_source, pre_sign), (post_source, post_sign) = pre, post
    return (coefficients[pre_source][:, post_source] * pre_sign[:, None, None] ** a
            * post_sign[None, :, None] ** b)


def best_post_map(coefficients: np.ndarray, pre: UnitMap, parities) -> UnitMap:
    """The pairing of the layer's postsynaptic (hidden) units (a permutation, and a sign per unit)
    under which its coefficients ``(n_pre, n_post, k)`` best match their mirror images, ``pre``
    fixed: the assignment maximising the summed products of each unit's incoming profile with its
    image's, mirrored on the presynaptic side. No unit is its own image (as in ``--coefficient-rows
    mirror``): else every unit would be paired with itself wherever the inputs that are their own
    image dominate, and the next layer, read through that identity, would match itself whatever
    its coefficients."""
    a, b = parity_exponents(parities)
    source, sign = pre
    mirrored_pre = coefficients[source] * sign[:, None, None] ** a
    products = np.einsum("ijf,ikf->jkf", coefficients, mirrored_pre)  # (unit, candidate image, field)
    even, odd = products[..., b == 0].sum(-1), products[..., b == 1].sum(-1)
    plus, minus = even + odd, even - odd  # the image unit with sign +1 or -1
    match = np.maximum(plus, minus)
    np.fill_diagonal(match, -np.inf)
    units, images = linear_sum_assignment(match, maximize=True)
    post_sign = np.where(plus[units, images] >= minus[units, images], 1.0, -1.0)
    return images, post_sign


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def layer_symmetry(coefficients: Sequence[np.ndarray], units: Sequence[UnitMap], parities) -> list[float]:
    """Per weight layer, the cosine between its coefficients ``(n_pre, n_post, k)`` and their
    mirror images under ``units``' input and action maps and the best hidden pairings found layer
    by layer. Each field is scaled to unit RMS over the layer first (eta and D weigh alike)."""
    scores, pre = [], units[0]
    for layer, raw in enumerate(coefficients):
        scaled = raw / np.sqrt(np.mean(np.square(raw), axis=(0, 1), keepdims=True))
        last = layer == len(coefficients) - 1
        post = units[-1] if last else best_post_map(scaled, pre, parities)
        scores.append(cosine(scaled, mirror_image(scaled, pre, post, parities)))
        pre = post
    return scores


def relabelled(units: Sequence[UnitMap], rng: np.random.Generator) -> list[UnitMap]:
    """A null mirror: the input and action maps relabelled by random permutations R (unit u of the
    null is unit R[u] of the real map), so each keeps its cycles and signs but pairs other units."""
    out = list(units)
    for layer in (0, len(units) - 1):
        source, sign = units[layer]
        relabel = rng.permutation(len(source))
        out[layer] = (np.argsort(relabel)[source[relabel]], sign[relabel])
    return out


def run_coefficients(path: str, every: int, from_start: bool):
    """(config, sizes, [(generation, per-layer coefficients as the network reads them)]) for every
    ``every``-th stored mean of the run (and its last)."""
    from spikehebb.agents.hebbian import coefficients_as_read
    from spikehebb.assess import load_run
    from spikehebb.models import candidate_means
    from spikehebb.train import run_genome

    config, _ = load_run(path)
    if config.task.name != "ant" or config.agent.kind != "hebbian":
        raise ValueError(f"{path} is a {config.task.name} {config.agent.kind} run: the mirror is the Ant's, of a rule's coefficients")
    sizes = config.task.make().sizes
    genome = run_genome(config)
    generations, means = candidate_means(path)
    keep = sorted(set(range(0, len(means), every)) | {len(means) - 1})
    start = config.make_strategy(genome.n_params).mean if from_start else 0.0

    def read(flat):
        layers = coefficients_as_read(config.agent, sizes, genome.split(flat)["coefficients"])
        return [layer[0] for layer in layers]

    return config, sizes, [(int(generations[i]), read(means[i] - start)) for i in keep]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="an ant run file of a Hebbian rule (its stored search means are scored)")
    parser.add_argument("--every", type=int, default=1, help="score every N-th stored mean and the last (default: %(default)s)")
    parser.add_argument("--nulls", type=int, default=20, help="null mirrors per mean (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="of the null mirrors (default: %(default)s)")
    parser.add_argument("--from-start", action="store_true", help="score the mean less the search's initial mean")
    parser.add_argument("--out", help="JSON of every score (default: none)")
    args = parser.parse_args(argv)
    try:
        if args.every < 1 or args.nulls < 1:
            raise ValueError(f"--every and --nulls must be positive, got {args.every} and {args.nulls}")
        config, sizes, stored = run_coefficients(args.run, args.every, args.from_start)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    from spikehebb.agents.mirror import field_parities, unit_mirror

    units, parities = unit_mirror(sizes), field_parities(config.agent.network_rule)
    rng = np.random.default_rng(args.seed)
    nulls = [relabelled(units, rng) for _ in range(args.nulls)]  # the same null mirrors for every mean
    layers = [f"{a}-{b}" for a, b in zip(sizes[:-1], sizes[1:])]
    what = "the change since the initial mean" if args.from_start else "the coefficients"
    print(f"{args.run}: mirror symmetry of {what} (cosine with their mirror image), per layer; "
          f"null: mean ± std over {args.nulls} wrong mirrors of the same shape")
    print(f"{'generation':>10} " + " ".join(f"{name:>24}" for name in layers))
    rows = []
    for generation, coefficients in stored:
        real = layer_symmetry(coefficients, units, parities)
        null = np.array([layer_symmetry(coefficients, u, parities) for u in nulls])
        cells = [f"{r:.3f} (null {m:.3f} ± {s:.3f})" for r, m, s in zip(real, null.mean(0), null.std(0))]
        print(f"{generation:>10} " + " ".join(f"{c:>24}" for c in cells), flush=True)
        rows.append({"generation": generation, "mirror": real, "null": null.tolist()})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"run": args.run, "layers": layers, "from_start": args.from_start,
                                              "nulls": args.nulls, "seed": args.seed, "scores": rows}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
