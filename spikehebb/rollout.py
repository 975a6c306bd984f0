"""Lifetimes in lockstep: one batched agent (B slots) against B environments, slots refilled.

A :class:`Rollout` owns one agent of B slots (for a Hebbian network: one compiled batched
network, built once) and, per task variant, B environments (made on first use and kept). One
call of :meth:`Rollout.run` lives n lifetimes (n may exceed B) on one variant:

1. the first min(n, B) lifetimes are armed at once: each slot's env is reset with the lifetime's
   seed and stepped ``burn_in_steps`` times with zero action (the ant settles on the floor; the
   agent does not see these steps), and the agent (and an encoder with evolved parameters, the
   car's convolutions) gets the lifetimes' parts; slots without a lifetime are padded with zeros;
2. each step encodes the observations of the live slots (the others get zero input), steps the
   agent (forward pass, then the rule; a modulated rule also gets each slot's modulator, the
   task's per-step signal), decodes B actions and steps the envs of the live slots;
   :class:`~spikehebb.tasks.EpisodeState` adds the fitness term and ends lifetimes by the
   task's episode rules;
3. a slot whose lifetime ended takes the next lifetime at once (env reset, burn-in, the agent's
   slot re-armed), so the batch stays full until the last lifetimes drain: no slot idles while
   work is left. A lifetime's numbers depend only on its own parts and seeds, never on its slot
   or its neighbours (the agent's slots are independent).

A lifetime whose agent outputs turn non-finite (a blown-up candidate: coefficients that overflow
the network's float type) ends there with fitness NaN, which strategies rank last; so does one
whose env gives a non-finite observation or fitness term (a broken simulation), or a modulated
rule's modulator beyond the network's float type. Its network steps count the failing step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from spikehebb.agents import AgentConfig, make_agent
from spikehebb.checks import is_integer
from spikehebb.tasks import EpisodeState, Task

#: ``on_step(t, agent, actions (B, ...), infos)`` is called after every step of the batch (t counts
#: the batch's steps from 0); infos holds the env's info dict of each slot that stepped (None for
#: the others). With a single lifetime per slot, t is each lifetime's network step.
StepHook = Callable[[int, Any, np.ndarray, list], None]

#: ``parts(i) -> {part: [per layer (1, *shape)]}``: lifetime i's parts, asked for when it starts.
PartsSource = Callable[[int], Mapping[str, Sequence[np.ndarray]]]


@dataclass(frozen=True)
class Lifetime:
    """One lifetime to live: ``key`` names it in the results; ``parts()`` gives its parts (per
    part, per layer ``(1, *shape)``), asked for when it starts; ``env_seed`` resets its env."""

    key: Any
    variant: str
    parts: Callable[[], Mapping[str, Sequence[np.ndarray]]]
    env_seed: int


@dataclass
class BatchResult:
    """What the lifetimes of one :meth:`Rollout.run` gave, in lifetime order."""

    fitness: np.ndarray
    """(n,) summed fitness term; NaN for a lifetime whose outputs blew up."""
    steps: np.ndarray
    """(n,) network steps lived."""
    env_steps: int
    """Env steps taken, burn-in included."""
    n_active: int
    """n, the number of lifetimes."""


class Rollout:
    """B slots of one task in lockstep.

    Arguments:
        task: the :class:`~spikehebb.tasks.Task`.
        agent: the :class:`~spikehebb.agents.AgentConfig` of the agent to build.
        batch_size: B, the agent's slots.
        env_kwargs: passed to ``task.make_env`` (e.g. ``render_mode``).
        agent_kwargs: passed to the agent (a network backend's ``target``, ``fold_eta``).
    """

    def __init__(
        self,
        task: Task,
        agent: AgentConfig,
        batch_size: int,
        *,
        env_kwargs: dict[str, Any] | None = None,
        **agent_kwargs,
    ):
        if not (is_integer(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.task = task
        self.batch_size = int(batch_size)
        self.agent = make_agent(agent, task, self.batch_size, **agent_kwargs)
        self.encoder = task.encoder()
        self.decoder = task.decoder()
        self._encoder_shapes = tuple(getattr(self.encoder, "param_shapes", ()))
        network = getattr(self.agent, "network", None)
        self._modulated = bool(getattr(network, "modulated", False))
        # the network's own float type: a term finite in float64 but beyond float32 is inf there
        self._modulator_max = float(np.finfo(getattr(network, "dtype", np.float64)).max)
        self._env_kwargs = dict(env_kwargs or {})
        self.compact_tail = True
        """Step only the live lifetimes at a generation's tail when the agent can (same numbers;
        False steps every slot to the end, for timing the difference)."""
        self.on_lifetime_end: Callable[[], None] | None = None
        """Called (no arguments) each time a lifetime ends: a worker process's heartbeat, one
        shared-memory write, so its evaluator can tell a slow worker from a hung one."""
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
        """Close the envs of one variant (all when None); they are made again when needed.

        Every env is closed even when one's ``close`` raises (an env left open would hold its
        physics client); the first error is raised after the last env is closed."""
        error = None
        for name in [variant] if variant is not None else list(self._envs):
            for env in self._envs.pop(name, []):
                try:
                    env.close()
                except Exception as exc:
                    error = error or exc
        if error is not None:
            raise error

    def run(
        self,
        variant: str,
        parts: PartsSource,
        env_seeds: Sequence[int],
        on_step: StepHook | None = None,
    ) -> BatchResult:
        """Live ``n = len(env_seeds)`` lifetimes on ``variant``, B at a time.

        parts: ``parts(i)`` gives lifetime i's parts (the agent's, plus ``"encoder"`` when the
        encoder has evolved parameters), per layer ``(1, *shape)``; env_seeds: n ints for
        ``env.reset(seed=)``.
        """
        n = len(env_seeds)
        if n < 1:
            raise ValueError(f"a rollout needs at least one lifetime, got {n}")
        if not all(is_integer(s) for s in env_seeds):
            raise ValueError(f"env seeds must be integers, got {list(env_seeds)!r}")
        self.task.check_variants([variant])
        queue = iter(range(n))

        def next_lifetime():
            i = next(queue, None)
            return None if i is None else Lifetime(i, variant, lambda: parts(i), int(env_seeds[i]))

        done, env_steps = self.run_queue(next_lifetime, on_step)
        fitness = np.array([done[i][0] for i in range(n)])
        steps = np.array([done[i][1] for i in range(n)], dtype=np.int64)
        return BatchResult(fitness=fitness, steps=steps, env_steps=env_steps, n_active=n)

    def run_queue(
        self, next_lifetime: Callable[[], "Lifetime | None"], on_step: StepHook | None = None
    ) -> tuple[dict[Any, tuple[float, int]], int]:
        """Live lifetimes as long as ``next_lifetime()`` gives them (None: no more), B at a time,
        each slot refilled as soon as its lifetime ends; lifetimes may be of different variants.

        Returns ({lifetime key: (fitness, network steps)}, env steps taken, burn-in included).
        """
        B, episode, term_key = self.batch_size, self.task.episode, self.task.fitness_term
        done: dict[Any, tuple[float, int]] = {}
        live: list[Lifetime | None] = [None] * B  # the lifetime each slot lives
        local_t = np.zeros(B, dtype=np.int64)  # network steps of each slot's current lifetime
        state = EpisodeState(episode, [False] * B)
        signal = np.zeros(B)  # each slot's last per-step signal (the modulator of the next step)
        env_steps = 0
        lifetime_ended = self.on_lifetime_end

        def settle(slot: int, lifetime: Lifetime) -> np.ndarray:
            """Reset the slot's env of the lifetime's variant and run the burn-in; the first
            observation the agent sees (the last burn-in step's, or the reset's: ``first_input``)."""
            env = self.envs(lifetime.variant, slot + 1)[slot]
            obs = reset_obs = env.reset(seed=lifetime.env_seed)[0]
            if episode.burn_in_steps:
                zero = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
                for _ in range(episode.burn_in_steps):
                    obs = env.step(zero)[0]
            return reset_obs if episode.first_input == "reset" else obs

        # Arm the first batch at once (padding slots get zeros and never step an env).
        first = []
        while len(first) < B and (lifetime := next_lifetime()) is not None:
            first.append(lifetime)
        if not first:
            return done, 0
        # Once no lifetime is left to claim, the live ones are moved into the first slots and the
        # agent steps only those (a generation's tail: the batch would step every slot until its
        # longest lifetime ends). Not with a step hook (it reads slots) or per-member encoders.
        compact = (self.compact_tail and on_step is None and not self._encoder_shapes
                   and getattr(self.agent, "can_compact", False))
        exhausted, prefix = len(first) < B, B
        if getattr(self.agent, "can_compact", False):
            self.agent.set_active(None)  # every slot, whatever an earlier call that raised left
        observations = [settle(slot, lifetime) for slot, lifetime in enumerate(first)]
        obs_batch = np.zeros((B,) + np.shape(observations[0]), dtype=np.float64)
        obs_batch[: len(first)] = observations
        self._arm([lifetime.parts() for lifetime in first], None, pad_to=B)
        for slot, lifetime in enumerate(first):
            live[slot] = lifetime
            state.start(slot)
        env_steps += len(first) * episode.burn_in_steps
        infos: list = [None] * B

        t = 0
        while state.alive_any():
            alive = np.array(state.alive)
            outputs = self.agent.step(
                self._encode(obs_batch, alive), signal.copy() if self._modulated else None
            )
            blown = alive & ~np.all(np.isfinite(outputs), axis=1)
            if blown.any():
                outputs = np.where(blown[:, None], 0.0, outputs)
            actions = self.decoder(outputs)
            ended = []
            for b in np.flatnonzero(alive):
                if blown[b]:
                    infos[b] = None
                    state.fail(b)
                    ended.append(b)
                    continue
                env = self._envs[live[b].variant][b]
                obs, reward, terminated, truncated, info = env.step(actions[b])
                env_steps += 1
                obs_batch[b] = obs
                infos[b] = info
                term = float(info[term_key] if term_key else reward)
                state.record(b, int(local_t[b]), term, bool(terminated))
                if terminated and not self.task.steps_after_terminated:
                    state.alive[b] = False  # the env cannot go on, grace steps or not (the car off the playfield)
                if state.alive[b] and not (math.isfinite(term) and np.all(np.isfinite(obs))):
                    # a broken simulation goes on only as NaN (the ant reports terminated and steps
                    # on, inside the grace steps or without early ends): the lifetime fails, as
                    # one whose outputs blow up does, instead of the network refusing the input;
                    # a non-finite term alone would leave a NaN fitness living on to its end
                    state.fitness[b], state.alive[b] = float("nan"), False
                if self._modulated:
                    value = term if self.task.modulator is None else float(
                        reward if self.task.modulator == "reward" else info[self.task.modulator]
                    )
                    if state.alive[b] and not (math.isfinite(value) and abs(value) <= self._modulator_max):
                        # a non-finite modulator from the env (its reward or info signal; a NaN
                        # term has failed the lifetime above) or one a float32 network holds only
                        # as inf would be the next step's: the lifetime fails, as one with a NaN
                        # observation does (not the whole batch)
                        state.fitness[b], state.alive[b] = float("nan"), False
                    signal[b] = value if state.alive[b] else 0.0  # an ended slot's stays 0 until refilled
                local_t[b] += 1
                if truncated:
                    state.alive[b] = False
                if not state.alive[b]:
                    ended.append(b)
            for b in np.flatnonzero(~alive):
                infos[b] = None
            if on_step is not None:
                on_step(t, self.agent, actions, infos)
            t += 1
            for b in ended:
                done[live[b].key] = (state.fitness[b], state.steps[b])
                if lifetime_ended is not None:
                    lifetime_ended()
                live[b] = None
                lifetime = None if exhausted else next_lifetime()
                if lifetime is not None:  # refill the slot
                    obs_batch[b] = settle(b, lifetime)
                    env_steps += episode.burn_in_steps
                    self._arm([lifetime.parts()], [b])
                    live[b], local_t[b], signal[b] = lifetime, 0, 0.0
                    state.start(b)
                else:
                    exhausted = True
                    obs_batch[b], signal[b] = 0, 0.0
            if compact and exhausted:
                prefix = self._compact(prefix, live, local_t, state, signal, obs_batch, infos)
        if compact:
            self.agent.set_active(None)
        return done, env_steps

    def _compact(self, prefix, live, local_t, state, signal, obs_batch, infos) -> int:
        """Move the live lifetimes into the first slots once at most half of the stepped prefix
        lives, and step only those from then on; returns the new prefix. Every per-slot state
        moves with its lifetime: the agent's (:meth:`move_members`), the env, the episode's
        bookkeeping, the last observation and signal. Each lifetime's numbers do not change."""
        alive = np.flatnonzero(state.alive)
        k = len(alive)
        if k == 0 or k > prefix // 2:
            return prefix
        sources = [int(j) for j in alive if j >= k]
        targets = [i for i in range(k) if not state.alive[i]]
        if sources:
            self.agent.move_members(sources, targets)
        for j, i in zip(sources, targets):
            envs = self._envs[live[j].variant]
            envs[i], envs[j] = envs[j], envs[i]
            live[i], live[j] = live[j], None
            local_t[i], signal[i], obs_batch[i], infos[i] = local_t[j], signal[j], obs_batch[j], infos[j]
            obs_batch[j], infos[j], signal[j] = 0, None, 0.0
            state.move(j, i)
        self.agent.set_active(k)
        return k

    def _arm(self, lifetimes: list[Mapping[str, Sequence[np.ndarray]]], members: list[int] | None, pad_to: int = 0) -> None:
        """Arm the agent's (and the encoder's) slots ``members`` (None: the first slots, padded
        with zero lifetimes up to ``pad_to``) with the lifetimes' parts."""
        names = set(lifetimes[0])
        joined = {name: [np.concatenate(layer) for layer in zip(*(lt[name] for lt in lifetimes))] for name in names}
        if pad_to:
            joined = {name: _pad(layers, pad_to) for name, layers in joined.items()}
        encoder_params = joined.pop("encoder", None)
        if self._encoder_shapes:
            if encoder_params is None:
                raise ValueError(f"the {self.task.name} encoder needs its parameters {self._encoder_shapes} per member")
            self.encoder.set_params(encoder_params, members)
        elif encoder_params is not None and len(encoder_params):
            raise ValueError(f"the {self.task.name} encoder has no parameters, got {len(encoder_params)} arrays")
        self.agent.reset(joined, members)

    def _encode(self, observations: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Input rates ``(B, n_inputs)``: the live slots' observations encoded, zeros for the
        others (ended or padding; their outputs are never used, and the car's CNN costs about
        0.5 ms per member-step)."""
        live = np.flatnonzero(alive)
        if len(live) == len(alive):
            return self.encoder(observations)
        inputs = np.zeros((len(alive), self.encoder.n_inputs))
        inputs[live] = self.encoder(observations[live], members=live)
        return inputs


def _pad(layers: Sequence[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Pad per-layer ``(n, ...)`` arrays with zero members up to ``(batch_size, ...)``."""
    out = []
    for a in layers:
        a = np.asarray(a)
        if a.shape[0] < batch_size:
            a = np.concatenate([a, np.zeros((batch_size - a.shape[0],) + a.shape[1:], a.dtype)])
        out.append(a)
    return out
