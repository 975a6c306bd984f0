"""Ant bodies that differ in the length of their lower legs, and the published presets.

A :class:`Morphology` scales the ankle capsule (the lower leg, the segment that touches the ground)
of each of the Ant's four legs and turns that into MJCF text for pyBullet's ``loadMJCF``. Everything
else (torso, hips, joint ranges, masses per volume, motors) stays as in pybullet's ``ant.xml``.

Which leg is which. The Ant walks along +x (its walk target is 1 km away on the x axis) and +y is
to its left. The MJCF body names do not follow that convention for all legs, so the names used in
the papers' file names describe the file, not the side of the walking robot:

===  =====================  ====================  ======================  =====================
leg  MJCF body              joints                ankle geom              position w.r.t. +x
===  =====================  ====================  ======================  =====================
0    ``front_left_leg``     ``hip_1, ankle_1``    ``left_ankle_geom``     front left  (+x, +y)
1    ``front_right_leg``    ``hip_2, ankle_2``    ``right_ankle_geom``    back left   (-x, +y)
2    ``left_back_leg``      ``hip_3, ankle_3``    ``third_ankle_geom``    back right  (-x, -y)
3    ``right_back_leg``     ``hip_4, ankle_4``    ``fourth_ankle_geom``   front right (+x, -y)
===  =====================  ====================  ======================  =====================

Presets (:data:`PRESETS`), each reproducing a published file:

- ``default``: pybullet_data ``mjcf/ant.xml``.
- ``damage_left``: leg 0 (front left) at 1/4 length, ankle end (0.4, 0.4) -> (0.1, 0.1).
  Najarro & Risi 2020 ``damaged_bullet_morphologies/ant_asym_left.xml`` (byte for byte), identical
  to Palm et al. 2021 ``envs/ants/ant-damage-left.xml`` up to an XML comment. The paper's unseen
  test body.
- ``damage_right``: leg 3 (front right) at 1/4 length, (0.4, -0.4) -> (0.1, -0.1). Najarro & Risi
  2020 ``ant_asym_right.xml`` (byte for byte); seen in the paper's training.
- ``palm_damage_right``: leg 1 (back left, despite the file name) at 1/4 length,
  (-0.4, 0.4) -> (-0.1, 0.1). Palm et al. 2021 ``ant-damage-right.xml`` (up to XML comments).
- ``long_back``: legs 2 and 3 (the two right-hand legs, despite the name) at 1.5x, ends
  (-0.6, -0.6) and (0.6, -0.6). Palm et al. 2021 ``ant-long-back.xml`` (up to XML comments).
- ``long_front``: legs 0 and 1 (the two left-hand legs) at 1.5x, ends (0.6, 0.6) and (-0.6, 0.6).
  Palm et al. 2021 ``ant-long-front.xml`` (up to XML comments).

Sources: github.com/enajx/HebbianMetaLearning (commit 6991484),
github.com/rasmusbergpalm/hebbian-evolution (commit a660cfb).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spikehebb.envs.ant_mjcf import ANT_MJCF_TEMPLATE

N_LEGS = 4

# Ankle capsule end point of each leg at scale 1, in the leg's own frame (m); ant.xml fromto.
DEFAULT_ANKLE_END = ((0.4, 0.4), (-0.4, 0.4), (-0.4, -0.4), (0.4, -0.4))

ANKLE_GEOM_NAMES = ("left_ankle_geom", "right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom")

# Allowed ankle scales. Below 0.05 the capsule (radius 0.08 m) is a sphere in all but name; above 3
# the lower leg (1.7 m) is longer than the whole default Ant is wide and the body no longer stands
# in the initial pose. The published bodies use 0.25, 1 and 1.5.
MIN_ANKLE_SCALE = 0.05
MAX_ANKLE_SCALE = 3.0


def _format_coordinate(value: float) -> str:
    """Write a coordinate (m) the way the published files do: ``0.1``, ``-0.6`` (6 significant digits)."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class Morphology:
    """An Ant body described by the length of each lower leg relative to pybullet's ant.xml.

    Args:
        ankle_scale: 4 factors (dimensionless; a sequence or a 1-D NumPy array of real
            numbers, stored as a tuple of floats), one per leg in MJCF order (see the module
            docstring for which leg is which): the ankle capsule's end point is scaled by it, so
            the capsule's length is ``scale * 0.566 m``. Each must lie in
            [MIN_ANKLE_SCALE, MAX_ANKLE_SCALE] = [0.05, 3].
        name: a label for logs and run files (not part of equality); presets carry their
            preset name.
    """

    ankle_scale: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        scales = self.ankle_scale
        if isinstance(scales, np.ndarray) and scales.ndim == 1:  # np.array([1, 1, 1, 0.25]): its items
            scales = tuple(scales.tolist())
        if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
            given = f"an array of shape {scales.shape}" if isinstance(scales, np.ndarray) else repr(scales)
            raise ValueError(f"ankle_scale must be a sequence of {N_LEGS} numbers (one per leg), got {given}")
        if len(scales) != N_LEGS:
            raise ValueError(
                f"ankle_scale must have {N_LEGS} entries (one per leg), got {len(scales)}: {scales!r}"
            )
        checked = []
        for leg, scale in enumerate(scales):
            try:
                if isinstance(scale, (str, bytes, bool, np.bool_)):  # float() would take "1.5" and True
                    raise TypeError
                value = float(scale)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"ankle_scale[{leg}] must be a number, got {scale!r}") from exc
            if not (math.isfinite(value) and MIN_ANKLE_SCALE <= value <= MAX_ANKLE_SCALE):
                raise ValueError(
                    f"ankle_scale[{leg}] must be a finite number in "
                    f"[{MIN_ANKLE_SCALE}, {MAX_ANKLE_SCALE}], got {scale!r}"
                )
            checked.append(value)
        object.__setattr__(self, "ankle_scale", tuple(checked))

    @property
    def ankle_ends(self) -> tuple[tuple[float, float], ...]:
        """End point (x, y) in m of each leg's ankle capsule in its parent frame, shape (4, 2)."""
        return tuple(
            (scale * x, scale * y) for scale, (x, y) in zip(self.ankle_scale, DEFAULT_ANKLE_END)
        )

    @property
    def ankle_lengths(self) -> tuple[float, ...]:
        """Length in m of each leg's ankle capsule axis (without the hemispherical caps), shape (4,)."""
        return tuple(math.hypot(x, y) for x, y in self.ankle_ends)

    def to_mjcf(self) -> str:
        """MJCF text of this body; for the presets it equals the published file (see module doc)."""
        fields = {
            f"ankle_end_{leg + 1}": f"{_format_coordinate(x)} {_format_coordinate(y)}"
            for leg, (x, y) in enumerate(self.ankle_ends)
        }
        return ANT_MJCF_TEMPLATE.format(**fields)


PRESETS: dict[str, Morphology] = {
    "default": Morphology((1.0, 1.0, 1.0, 1.0), "default"),
    "damage_left": Morphology((0.25, 1.0, 1.0, 1.0), "damage_left"),
    "damage_right": Morphology((1.0, 1.0, 1.0, 0.25), "damage_right"),
    "palm_damage_right": Morphology((1.0, 0.25, 1.0, 1.0), "palm_damage_right"),
    "long_back": Morphology((1.0, 1.0, 1.5, 1.5), "long_back"),
    "long_front": Morphology((1.5, 1.5, 1.0, 1.0), "long_front"),
}


def get_morphology(spec: str | Morphology) -> Morphology:
    """Return the Morphology named by ``spec`` (a key of :data:`PRESETS`) or ``spec`` itself.

    Raises:
        ValueError: ``spec`` is an unknown name or neither a name nor a Morphology.
    """
    if isinstance(spec, Morphology):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(
                f"unknown morphology {spec!r}; presets are {', '.join(sorted(PRESETS))}, "
                "or pass a Morphology(ankle_scale=(...)) object"
            )
        return PRESETS[spec]
    raise ValueError(
        f"morphology must be a preset name ({', '.join(sorted(PRESETS))}) or a Morphology, "
        f"got {type(spec).__name__}: {spec!r}"
    )
