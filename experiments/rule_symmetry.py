"""How close are a run's rule coefficients to those of a left-right mirror-symmetric network?

A network is mirror-symmetric when every synapse's coefficients equal its mirror synapse's with the
signs of :mod:`spikehebb.agents.mirror` (field f of synapse (i, j) = s_i^a s_j^b times field f of
(pi(i), pi(j))). The Ant fixes the mirror of the 28 inputs and 8 actions; a hidden unit's mirror
image is whichever unit (and sign: tanh is odd) the rule makes it. So this searches, per hidden
layer, the permutation of units and a sign per unit (not necessarily a pairing; no unit its own
image) under which the coefficients best match their mirror images, pooled over every synapse
(scipy's linear_sum_assignment, one hidden layer at a time, from its incoming synapses first, then
from both sides until nothing changes), and scores each layer, and all of them pooled, as the
cosine between the coefficients and their mirror images (each field scaled to unit RMS first): 1
for a mirror-symmetric rule (``--coefficient-rows mirror`` runs read through the network's tied
rows), about what the null gives for a rule with no mirror structure.

The null: the same search with the inputs' and actions' mirror replaced by a mirror of the same
shape pairing the wrong units (the real one relabelled by a random permutation: the same number
of units that are their own image, with the same signs), so that what any search over the
permutations finds in coefficients with no mirror structure is scored alike. The hidden-to-hidden layer's
symmetry is the hidden units' alone (a wrong mirror of the body can leave it whole): the body's
mirror is tested by the layers that touch the body and the pooled score. Its power, measured on
coefficients that are a mix of a mirror-symmetric rule's and noise
(``tests/test_rule_symmetry.py``): a symmetric part of 30% of the variance stands out in every
layer, 20% in the pooled score, 10% not even there. ``--from-start`` scores what evolution
changed (the stored mean less the search's initial mean) instead of the coefficients.

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


def identity(n: int) -> UnitMap:
    """The map that leaves each of ``n`` units as it is."""
    return np.arange(n), np.ones(n)


def unit_matches(coefficients: np.ndarray, other: UnitMap, parities, side: str) -> tuple[np.ndarray, np.ndarray]:
    """How well each hidden unit of one side of a layer matches each candidate image: ``(plus,
    minus)``, each ``(n, n)``, the summed products of the unit's synapses' coefficients with the
    candidate's mirrored ones (the other side through ``other``), with the candidate's sign +1 and
    -1: summed over the units of a signed permutation, the numerator of the layer's cosine (every
    synapse alike, ``coefficients`` scaled to unit RMS per field). ``side``: "post", the layer's
    postsynaptic units (their incoming synapses), or "pre" (their outgoing ones)."""
    a, b = parity_exponents(parities)
    n_pre, n_post = coefficients.shape[:2]
    if side == "post":  # units along axis 1: make them axis 0
        own = coefficients.transpose(1, 0, 2)
        image = mirror_image(coefficients, other, identity(n_post), parities).transpose(1, 0, 2)
        flips = b
    else:
        own, image = coefficients, mirror_image(coefficients, identity(n_pre), other, parities)
        flips = a
    n = own.shape[0]
    own, negated = own.reshape(n, -1), (image * (-1.0) ** flips).reshape(n, -1)
    return own @ image.reshape(n, -1).T, own @ negated.T


def best_map(matches: Sequence[tuple[np.ndarray, np.ndarray]]) -> UnitMap:
    """The signed permutation of a hidden layer's units that maximises the summed ``matches``
    (:func:`unit_matches` of the layers on either side): linear_sum_assignment, each unit's sign
    the better of the two for its image. No unit is its own image (as in ``--coefficient-rows
    mirror``): else every unit would be paired with itself wherever the inputs that are their own
    image dominate, and the next layer, read through that identity, would match itself whatever
    its coefficients. The permutation need not be a pairing (an involution)."""
    plus, minus = (sum(m[i] for m in matches) for i in (0, 1))
    match = np.maximum(plus, minus)
    np.fill_diagonal(match, -np.inf)
    units, images = linear_sum_assignment(match, maximize=True)
    return images, np.where(plus[units, images] >= minus[units, images], 1.0, -1.0)


def hidden_maps(scaled: Sequence[np.ndarray], units: Sequence[UnitMap], parities, rounds: int = 20) -> list[UnitMap]:
    """Every layer's map of units: the inputs' and actions' from ``units``, each hidden layer's the
    signed permutation found first from its incoming synapses, layer by layer, then refined from
    both its incoming and outgoing synapses, one hidden layer at a time with the others fixed,
    until none changes (at most ``rounds`` times): each step raises the summed layer cosines."""
    maps = list(units)
    for h in range(1, len(maps) - 1):
        maps[h] = best_map([unit_matches(scaled[h - 1], maps[h - 1], parities, "post")])
    for _ in range(rounds):
        changed = False
        for h in range(1, len(maps) - 1):
            new = best_map([unit_matches(scaled[h - 1], maps[h - 1], parities, "post"),
                            unit_matches(scaled[h], maps[h + 1], parities, "pre")])
            changed |= not all(np.array_equal(x, y) for x, y in zip(new, maps[h]))
            maps[h] = new
        if not changed:
            break
    return maps


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def layer_symmetry(coefficients: Sequence[np.ndarray], units: Sequence[UnitMap], parities) -> list[float]:
    """Per weight layer, then of all layers pooled (every synapse alike), the cosine between the
    coefficients ``(n_pre, n_post, k)`` and their mirror images under ``units``' input and action
    maps and the hidden maps of :func:`hidden_maps`. Each field is scaled to unit RMS over its
    layer first (eta and D weigh alike)."""
    scaled = [raw / np.sqrt(np.mean(np.square(raw), axis=(0, 1), keepdims=True)) for raw in coefficients]
    maps = hidden_maps(scaled, units, parities)
    images = [mirror_image(c, pre, post, parities) for c, pre, post in zip(scaled, maps[:-1], maps[1:])]
    pooled = cosine(np.concatenate([c.ravel() for c in scaled]), np.concatenate([m.ravel() for m in images]))
    return [cosine(c, m) for c, m in zip(scaled, images)] + [pooled]


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
        raise ValueError(f"{path} is a {config.task.name} {config.agent.kind} run: "
                         f"the mirror is the Ant's, of a rule's coefficients")
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
    parser.add_argument("--every", type=int, default=1,
                        help="score every N-th stored mean and the last (default: %(default)s)")
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
    layers = [f"{a}-{b}" for a, b in zip(sizes[:-1], sizes[1:])] + ["all"]
    what = "the change since the initial mean" if args.from_start else "the coefficients"
    print(f"{args.run}: mirror symmetry of {what} (cosine with their mirror image), per layer and pooled; "
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
