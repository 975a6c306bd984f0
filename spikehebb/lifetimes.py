"""Test lifetimes of a stored run with a step hook: what the analyses (videos, perturbations)
need of the rollout, in one place.

:class:`Lifetimes` runs the same lifetimes as :func:`spikehebb.assess.assess` and
:func:`~spikehebb.assess.record_traces` (episode e of variant v is seeded by (run seed,
``EVALUATION_TAG``, e, v)), so the video of episode 0 shows the lifetime whose traces
``evaluate --traces`` records, but it can render frames, change the episode rules and change
the decoder. Hooks receive ``on_step(t, controller, actions (B, n_act), infos)`` after every
network step; ``infos[b]`` is member b's env info dict with ``"step_reward"`` added (None once
member b has ended). The controller is read and changed only through :func:`weights_of`,
:func:`activations_of`, :func:`set_weights` and :func:`freeze`, so a change of the rollout's
controller type (network today, agent tomorrow) is absorbed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import gymnasium
import numpy as np

from spikehebb.checks import check_episodes, is_integer
from spikehebb.assess import load_run, without_early_ends
from spikehebb.agents import agent_class, genome_parts
from spikehebb.genome import GenomeMap
from spikehebb.rollout import BatchResult, Rollout
from spikehebb.worker import EVALUATION_TAG, lifetime_seeds

#: The shipped models (run files): ``models/NAME.h5``.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def resolve_run(run_or_model: str | Path) -> Path:
    """A run file's path, or the run file of a shipped model named ``run_or_model``.

    Arguments:
        run_or_model: path of a run file, or a bare model name (no folder part, no suffix, e.g.
            ``"ant_abcd_lr"``) for ``models/NAME.h5``. A path with a folder part is never read as
            a model name: ``runs/ant_static`` that is not a file is refused (naming
            ``runs/ant_static.h5`` when that exists), not taken for ``models/ant_static.h5``.
    """
    path = Path(run_or_model)
    if path.is_file():
        return path
    if len(path.parts) > 1:  # a folder part: the user's own path, never a shipped model's name
        h5 = path.parent / f"{path.name}.h5"  # the user forgot the suffix
        hint = f"; did you mean {str(h5)!r}?" if path.suffix != ".h5" and h5.is_file() else ""
        raise FileNotFoundError(f"expected a run file (.h5), got {str(run_or_model)!r}, which is not a file{hint}")
    model = MODELS_DIR / f"{path.name}.h5"
    if path.suffix == "" and model.is_file():
        return model
    shipped = sorted(p.stem for p in MODELS_DIR.glob("*.h5")) if MODELS_DIR.is_dir() else []
    raise FileNotFoundError(
        f"expected a run file (.h5) or the name of a model in {MODELS_DIR} "
        f"({', '.join(shipped) if shipped else 'none ships yet'}), got {str(run_or_model)!r}"
    )


def is_shipped_model(path: str | Path) -> bool:
    """Whether ``path`` lies in :data:`MODELS_DIR`, where commands read but never write."""
    return Path(path).resolve().parent == MODELS_DIR.resolve()


def run_label(run: str | Path) -> str:
    """How tables name a run's controller (:attr:`AgentConfig.controller_label`)."""
    config, _ = load_run(resolve_run(run))
    return config.agent.controller_label


class _StepReward(gymnasium.Wrapper):
    """Puts the env's reward of the step into ``info["step_reward"]`` (the car's fitness is the
    reward, which the step hook does not otherwise see)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "step_reward": float(reward)}


class Lifetimes:
    """Test lifetimes of one run's parameters, a batch of up to ``batch_size`` at a time.

    Arguments:
        run: run file or shipped model name.
        which: ``"mean"`` (the search distribution's final mean, default) or ``"best"``.
        batch_size: members per lockstep batch.
        render: make the envs with ``render_mode="rgb_array"`` (see :meth:`frame`).
        max_env_steps: episode length in env steps, burn-in included (default: the task's full
            length, as ``evaluate`` uses).
        early_ends: False: lifetimes end only at the step limit, as ``evaluate --no-early-end``
            runs them (:func:`spikehebb.assess.without_early_ends`).
        decoder: wraps the task's decoder: ``decoder(task_decoder) -> decoder``, called once.
        wrap_env: wraps every env the lifetimes make: ``wrap_env(env) -> env`` (e.g.
            :class:`spikehebb.envs.mirror.MirroredAnt`).
    """

    def __init__(
        self,
        run: str | Path,
        which: str = "mean",
        *,
        batch_size: int = 1,
        render: bool = False,
        max_env_steps: int | None = None,
        early_ends: bool = True,
        decoder: Callable[[Callable], Callable] | None = None,
        wrap_env: Callable[[gymnasium.Env], gymnasium.Env] | None = None,
    ):
        if not (is_integer(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_env_steps is not None and not (is_integer(max_env_steps) and max_env_steps >= 1):
            raise ValueError(f"max_env_steps must be a positive integer (env steps, burn-in included), got {max_env_steps!r}")
        self.path = resolve_run(run)
        self.config, self.params = load_run(self.path, which)
        if not early_ends:
            self.config = without_early_ends(self.config)
        task = self.config.task.make(full_length=max_env_steps is None)
        if max_env_steps is not None:
            task = task.replace(episode={"max_env_steps": int(max_env_steps)})
        make_env, wrap = task.make_env, wrap_env or (lambda env: env)
        task = task.replace(make_env=lambda variant, **kw: _StepReward(wrap(make_env(variant, **kw))))
        if decoder is not None:
            task_decoder = task.decoder
            task = task.replace(decoder=lambda: decoder(task_decoder()))
        self.task = task
        self.agent = self.config.agent
        self.batch_size = int(batch_size)
        self.rollout = Rollout(
            task, self.agent, self.batch_size, env_kwargs={"render_mode": "rgb_array"} if render else None,
        )
        self._all_parts = genome_parts(self.agent, task)
        self._parts = GenomeMap.of(self._all_parts).split(np.asarray(self.params)[None])

    @property
    def controller(self):
        """The batch's agent (what hooks receive): read and change it through the functions at
        the end of this module."""
        return self.rollout.agent

    @property
    def label(self) -> str:
        """``"Hebbian ABCD_lr"``, ``"static"``, ...: how tables and frames name the controller."""
        return self.agent.controller_label

    @property
    def static(self) -> bool:
        """Whether the run evolved static weights (no rule)."""
        return self.agent.kind == "static"

    def lifetime_parts(self, variant: str, episode: int) -> dict[str, list[np.ndarray]]:
        """Episode ``episode``'s parts, per part per layer ``(1, *shape)``: the run's searched
        parts and the parts drawn for that lifetime (a Hebbian network's initial weights)."""
        parts = dict(self._parts)
        rng = lifetime_seeds(self.config.seed, *self._path(variant, episode))[0]
        for part in self._all_parts:
            if not part.searched:
                parts[part.name] = agent_class(self.agent).draw_part(self.agent, self.task.sizes, part.name, rng)
        return parts

    def initial_weights(self, variant: str, episodes: Sequence[int]) -> list[np.ndarray]:
        """Initial weights of the episodes, per layer ``(n, n_pre, n_post)``: the evolved ones for
        static and coevolved runs, else each episode's random draw."""
        draws = [self.lifetime_parts(variant, e)["weights"] for e in episodes]
        return [np.concatenate(layer) for layer in zip(*draws)]

    def random_weights(self, n: int, rng: np.random.Generator | int | None) -> list[np.ndarray]:
        """n random weight sets from the run's initial distribution, per layer ``(n, n_pre, n_post)``
        (with Dale's law, its signs, as every lifetime's draw)."""
        from spikehebb.agents.hebbian import NetworkAgent
        from spikehebb.network import sample_weights

        signs = NetworkAgent.signs(self.agent, self.task.sizes)  # None without Dale's law
        return sample_weights(self.task.sizes, n, self.agent.weight_init, self.agent.weight_scale, rng, signs=signs)

    def run(self, variant: str, episodes: Sequence[int], on_step=None) -> BatchResult:
        """Run test episodes ``episodes`` of ``variant`` (at most ``batch_size`` at a time) with the hook."""
        episodes = list(episodes)
        self.task.check_variants([variant])
        seeds = [lifetime_seeds(self.config.seed, *self._path(variant, e))[1] for e in episodes]
        return self.rollout.run(variant, lambda i: self.lifetime_parts(variant, episodes[i]), seeds, on_step)

    def env(self, variant: str, member: int = 0):
        """Member ``member``'s env of ``variant`` (made on first use, kept until :meth:`close`).

        member: the member's index in the batch, an integer in ``0 .. batch_size - 1`` (an env
        past the batch would never be reset or stepped by :meth:`run`)."""
        self.task.check_variants([variant])
        if not (is_integer(member) and 0 <= member < self.batch_size):
            raise ValueError(f"member must be an integer in 0 .. {self.batch_size - 1} (a member of the batch of "
                             f"{self.batch_size}), got {member!r}")
        return self.rollout.envs(variant, int(member) + 1)[int(member)]

    def frame(self, variant: str, member: int = 0) -> np.ndarray:
        """The current ``(H, W, 3)`` uint8 frame of member ``member``'s env of ``variant`` (needs
        ``render=True``; ``member`` as :meth:`env` takes it)."""
        return self.env(variant, member).render()

    def fitness_term(self, info: dict) -> float:
        """The step's fitness term from a hook's info (the ant: ``reward_progress``; the car:
        the env reward)."""
        key = self.task.fitness_term
        return float(info[key] if key else info["step_reward"])

    def close(self) -> None:
        self.rollout.close()

    def __enter__(self) -> "Lifetimes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _path(self, variant: str, episode: int) -> tuple[int, int, int]:
        """The lifetime's seed path; an unknown variant or a bad episode number is a one-line error."""
        self.task.check_variants([variant])
        return (EVALUATION_TAG, check_episodes([episode])[0], self.task.variants.index(variant))


# ------------------------------------------------------------------ the controller, in one place
def weights_of(controller) -> list[np.ndarray]:
    """Current weights, per layer ``(B, n_pre, n_post)``."""
    w = controller.weights
    return w() if callable(w) else w


def activations_of(controller) -> list[np.ndarray]:
    """Activations of the last step, per layer ``(B, n_l)``, inputs first."""
    a = controller.activations
    return a() if callable(a) else a


def set_weights(controller, weights: Sequence[np.ndarray]) -> None:
    """Replace the weights in mid-lifetime, per layer ``(B, n_pre, n_post)``."""
    controller.set_weights(weights)


def freeze(controller, frozen: bool = True) -> None:
    """Pause (True) or resume the rule: frozen steps run the forward pass only."""
    controller.frozen = frozen
