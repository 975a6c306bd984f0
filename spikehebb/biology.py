"""Biology-minded options of a Hebbian agent: Dale's law signs and the checks that tie the
agent's options to its task (Burns 2021, J Neurophysiol 125:1234, on Najarro & Risi 2020).

- Dale's law: every unit of every layer, inputs included, is excitatory (+1) or inhibitory (-1);
  :func:`dale_signs` draws the assignment from a seed (``AgentConfig.dale_seed``, stored in the
  run file with the fraction, so ``spikehebb evaluate`` rebuilds the same signs). The
  constraints that keep each unit's outgoing weights on its side are
  :class:`~spikehebb.network.constraints.DaleClip`,
  :class:`~spikehebb.network.constraints.DaleSmooth` and
  :class:`~spikehebb.network.constraints.DaleSquareplus`; initial weights take the signs
  (:func:`~spikehebb.network.sample_weights`).
- Non-negative rates: :func:`spikehebb.tasks.positive_task` (on/off inputs, agonist/antagonist
  outputs, rectified tanh), selected by ``TaskConfig.positive``.
- The three-factor rule: :func:`spikehebb.rules.three_factor`; the modulator is the task's signal
  (:attr:`spikehebb.tasks.Task.modulator`) minus a running baseline kept by the network.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Dale modes: the name of each mode's weight constraint (:data:`spikehebb.network.CONSTRAINTS`).
DALE_MODES = {"clip": "dale_clip", "smooth": "dale_smooth", "squareplus": "dale_squareplus"}

#: Tag of the E/I assignment's random stream (kept apart from every other use of the seed).
_DALE_STREAM = 0xDA1E


def check_dale_fraction(fraction) -> float:
    """The excitatory fraction as a float in (0, 1], or a one-line ValueError."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"the Dale fraction of excitatory units must be in (0, 1], got {fraction!r}")
    return float(fraction)


def dale_signs(sizes: Sequence[int], fraction: float, seed: int) -> list[np.ndarray]:
    """E/I assignment of every unit: per layer (inputs first) an int8 array ``(n_l,)`` of +1
    (excitatory) and -1 (inhibitory), ``round(fraction * n_l)`` excitatory units per layer at
    positions drawn from ``seed`` (the same seed gives the same signs in every process)."""
    fraction = check_dale_fraction(fraction)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _DALE_STREAM]))
    signs = []
    for n in sizes:
        s = -np.ones(int(n), dtype=np.int8)
        s[rng.permutation(int(n))[: int(round(fraction * n))]] = 1
        signs.append(s)
    return signs


def dale_constraint(sizes: Sequence[int], fraction: float, mode: str, seed: int, balance: bool = False):
    """The weight constraint keeping Dale's law in ``mode`` (a key of :data:`DALE_MODES`), with
    E/I balanced input gains if ``balance`` (:mod:`spikehebb.network.constraints`)."""
    from spikehebb.network import make_constraint

    if mode not in DALE_MODES:
        raise ValueError(f"unknown Dale mode {mode!r}; expected one of {tuple(DALE_MODES)}")
    return make_constraint({"name": DALE_MODES[mode], "signs": dale_signs(sizes, fraction, seed), "balance": balance})


def check_agent_task(agent, task) -> None:
    """One-line errors for agent options the task cannot serve (before a run file is written)."""
    if getattr(agent, "modulated", False) and not task.has_modulator:
        raise ValueError(f"--modulated needs a modulator signal, and task {task.name!r} names none")
    latent = getattr(agent, "dale", None) is not None and getattr(agent, "dale_mode", "clip") != "clip"
    if latent and task.constraints:
        # the rule acts on a latent v (w = link(v)); a constraint on w after it would not reach v
        raise ValueError(f"--dale-mode {agent.dale_mode} acts on a latent weight that task {task.name!r}'s "
                         f"{', '.join(task.constraints)} cannot reach: use --dale-mode clip")
    if getattr(agent, "coefficient_rows", None) == "mirror":
        from spikehebb.agents.mirror import unit_mirror

        try:
            unit_mirror(task.sizes)
            if task.activation != "tanh":  # a unit's mirror image flips its sign: the activation must be odd
                raise ValueError(f"mirror-symmetric rules need odd units (tanh), got {task.activation!r}")
        except ValueError as err:
            reason = " (--positive's on/off inputs and paired actions)" if task.activation == "rtanh" else ""
            raise ValueError(f"--coefficient-rows mirror on task {task.name!r}{reason}: {err}") from None
    if getattr(agent, "kind", None) == "lif" and task.activation == "rtanh":
        raise ValueError("--positive is an option of rate networks: a lif agent's rates are signed "
                         "(on minus off neurons), so its paired actions would leave [-1, 1]")
