"""Lifetimes of B candidates in lockstep: one batched plastic network against B environments.

A :class:`Rollout` owns one :class:`~spikehebb.network.PlasticNetwork` of population B (built and
compiled once) and, per task variant, B environments (made on first use and kept). One call of
:meth:`Rollout.run` is one lifetime of up to B members:

1. every env is reset with its member's seed and stepped ``burn_in_steps`` times with zero
   action (the ant settles on the floor; the network does not see these steps);
2. the network is re-armed with the members' coefficients and initial weights, and an encoder
   with evolved parameters (the car's convolutions) gets the members' values;
3. inside one ``network.run`` call, each step encodes the observations of the members still
   alive (the others get zero input), runs the network one
   step (forward pass, then the rule), decodes B actions and steps the envs of the members still
   alive; :class:`~spikehebb.tasks.EpisodeState` adds the fitness term and ends members by the
   task's rules. Members that ended stop stepping their env; the batch ends when all have.

Members past the end of a short batch (fewer candidates than B) are padded with zeros and never
step an env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from spikehebb.network import PlasticNetwork
from spikehebb.tasks import EpisodeState, Task

#: ``on_step(t, network, actions (B, ...), infos)`` is called after every network step; infos holds
#: the env's info dict for members that stepped (None for the others).
StepHook = Callable[[int, PlasticNetwork, np.ndarray, list], None]


@dataclass
class BatchResult:
    """What one lifetime of a batch gave, per member (padding included, see ``n_active``)."""

    fitness: np.ndarray
    """(B,) summed fitness term."""
    steps: np.ndarray
    """(B,) network steps lived."""
    env_steps: int
    """Env steps taken by the active members, burn-in included."""
    n_active: int


class Rollout:
    """B members of one task in lockstep.

    Arguments:
        task: the :class:`~spikehebb.tasks.Task`.
        rule: rule name, or None for static networks.
        batch_size: B, the network's population.
        backend, dtype, network_kwargs: passed to :class:`PlasticNetwork`.
        env_kwargs: passed to ``task.make_env`` (e.g. ``render_mode``).
    """

    def __init__(
        self,
        task: Task,
        rule: str | None,
        batch_size: int,
        *,
        backend: str = "brian2",
        dtype: str = "float32",
        env_kwargs: dict[str, Any] | None = None,
        **network_kwargs,
    ):
        self.task = task
        self.batch_size = int(batch_size)
        network_kwargs.setdefault("normalise", task.normalise if rule is not None else None)
        self.network = PlasticNetwork(
            task.sizes, rule, self.batch_size, backend=backend, activation=task.activation,
            dtype=dtype, **network_kwargs,
        )
        self.encoder = task.encoder()
        self.decoder = task.decoder()
        self._env_kwargs = dict(env_kwargs or {})
        self._envs: dict[str, list] = {}

    def envs(self, variant: str, n: int | None = None) -> list:
        """The first ``n`` (default B) envs of ``variant``, made on first use and kept."""
        n = self.batch_size if n is None else n
        self.task.check_variants([variant])
        envs = self._envs.setdefault(variant, [])
        while len(envs) < n:
            envs.append(self.task.make_env(variant, **self._env_kwargs))
        return envs[:n]

    def close(self, variant: str | None = None) -> None:
        """Close the envs of one variant (all when None); they are made again when needed."""
        for name in [variant] if variant is not None else list(self._envs):
            for env in self._envs.pop(name, []):
                env.close()

    def run(
        self,
        variant: str,
        coefficients: Sequence[np.ndarray] | None,
        weights: Sequence[np.ndarray],
        env_seeds: Sequence[int],
        on_step: StepHook | None = None,
        encoder_params: Sequence[np.ndarray] | None = None,
    ) -> BatchResult:
        """One lifetime of ``n = len(env_seeds) <= B`` members on ``variant``.

        coefficients: per layer ``(n, n_pre, n_post, k)`` (None for a static network);
        weights: per layer ``(n, n_pre, n_post)``; env_seeds: n ints for ``env.reset(seed=)``;
        encoder_params: per layer ``(n, *encoder.param_shapes[l])``, required exactly when the
        encoder has parameters.
        """
        n, B = len(env_seeds), self.batch_size
        if not 1 <= n <= B:
            raise ValueError(f"a batch holds 1 to {B} members, got {n}")
        rules, term_key = self.task.rules, self.task.fitness_term
        envs = self.envs(variant, n)

        observations = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, env_seeds)]
        if rules.burn_in_steps:
            zero = np.zeros(envs[0].action_space.shape, dtype=envs[0].action_space.dtype)
            for b, env in enumerate(envs):
                for _ in range(rules.burn_in_steps):
                    observations[b] = env.step(zero)[0]

        self.network.reset(_pad(coefficients, B), _pad(weights, B))
        shapes = tuple(getattr(self.encoder, "param_shapes", ()))
        if shapes:
            if encoder_params is None:
                raise ValueError(f"the {self.task.name} encoder needs its parameters {shapes} per member")
            self.encoder.set_params(_pad(encoder_params, B))
        elif encoder_params is not None and len(encoder_params):
            raise ValueError(f"the {self.task.name} encoder has no parameters, got {len(encoder_params)} arrays")
        state = EpisodeState(rules, [b < n for b in range(B)])
        obs_batch = np.zeros((B,) + np.shape(observations[0]), dtype=np.float64)
        obs_batch[:n] = observations
        infos: list = [None] * B

        def step_envs(t: int, outputs: np.ndarray):
            actions = self.decoder(outputs)
            for b in range(n):
                if not state.alive[b]:
                    infos[b] = None
                    continue
                obs, reward, terminated, truncated, info = envs[b].step(actions[b])
                obs_batch[b] = obs
                infos[b] = info
                state.record(b, t, float(info[term_key] if term_key else reward), bool(terminated))
                if truncated:
                    state.alive[b] = False
            if on_step is not None:
                on_step(t, self.network, actions, infos)
            return self._encode(obs_batch, state.alive) if any(state.alive) else None

        self.network.run(self._encode(obs_batch, state.alive), rules.max_network_steps, step_envs)
        steps = np.array(state.steps[:n])
        return BatchResult(
            fitness=np.array(state.fitness[:n]),
            steps=steps,
            env_steps=int(steps.sum()) + n * rules.burn_in_steps,
            n_active=n,
        )


    def _encode(self, observations: np.ndarray, alive: Sequence[bool]) -> np.ndarray:
        """Input rates ``(B, n_inputs)``: the live members' observations encoded, zeros for the
        others (ended or padding; their outputs are never used, and the car's CNN costs about
        0.5 ms per member-step)."""
        live = np.flatnonzero(alive)
        if len(live) == len(alive):
            return self.encoder(observations)
        inputs = np.zeros((len(alive), self.encoder.n_inputs))
        inputs[live] = self.encoder(observations[live], members=live)
        return inputs


def _pad(layers: Sequence[np.ndarray] | None, batch_size: int) -> list[np.ndarray] | None:
    """Pad per-layer ``(n, ...)`` arrays with zero members up to ``(batch_size, ...)``."""
    if layers is None:
        return None
    out = []
    for a in layers:
        a = np.asarray(a)
        if a.shape[0] < batch_size:
            a = np.concatenate([a, np.zeros((batch_size - a.shape[0],) + a.shape[1:], a.dtype)])
        out.append(a)
    return out
