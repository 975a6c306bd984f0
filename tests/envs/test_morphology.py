"""Morphologies: the presets reproduce the published MJCF files; bad scales are rejected."""

import hashlib
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pybullet_data
import pytest

from spikehebb.envs.morphology import (
    ANKLE_GEOM_NAMES,
    MAX_ANKLE_SCALE,
    PRESETS,
    Morphology,
    get_morphology,
)

# The ankle capsules' fromto in the published files (copied from them; every other geom is as in
# pybullet_data's ant.xml). Najarro & Risi 2020: github.com/enajx/HebbianMetaLearning @ 6991484,
# damaged_bullet_morphologies/; Palm et al. 2021: github.com/rasmusbergpalm/hebbian-evolution
# @ a660cfb, envs/ants/.
PUBLISHED_ANKLE_FROMTO = {
    "default": {},
    "damage_left": {"left_ankle_geom": "0.0 0.0 0.0 0.1 0.1 0.0"},  # ant_asym_left.xml
    "damage_right": {"fourth_ankle_geom": "0.0 0.0 0.0 0.1 -0.1 0.0"},  # ant_asym_right.xml
    "palm_damage_right": {"right_ankle_geom": "0.0 0.0 0.0 -0.1 0.1 0.0"},  # ant-damage-right.xml
    "long_back": {  # ant-long-back.xml
        "third_ankle_geom": "0.0 0.0 0.0 -0.6 -0.6 0.0",
        "fourth_ankle_geom": "0.0 0.0 0.0 0.6 -0.6 0.0",
    },
    "long_front": {  # ant-long-front.xml
        "left_ankle_geom": "0.0 0.0 0.0 0.6 0.6 0.0",
        "right_ankle_geom": "0.0 0.0 0.0 -0.6 0.6 0.0",
    },
}

# sha256 of Najarro & Risi's files (4,233 bytes each; they differ from pybullet_data's ant.xml in
# one fromto only), taken when this test was written. Palm et al.'s files add "<!-- diff -->"
# comments, so only their geometry is compared (above).
PUBLISHED_SHA256 = {
    "damage_left": "86191bbc589e81e39b8cb70a81a21697d55f7461c2053cd534e08ac1e82a2c29",
    "damage_right": "3b456fc1840e45230cc04f83b446203530f9add25be250fbe3ab9564c5155aea",
}


def _pybullet_ant_xml() -> str:
    with open(os.path.join(pybullet_data.getDataPath(), "mjcf", "ant.xml")) as file:
        return file.read()


def _geom_fromto(mjcf: str) -> dict[str, str]:
    return {g.get("name"): g.get("fromto") for g in ET.fromstring(mjcf).iter("geom")}


def test_default_is_pybullets_ant_xml_byte_for_byte():
    assert PRESETS["default"].to_mjcf() == _pybullet_ant_xml()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_geometry_matches_published_file(name):
    expected = _geom_fromto(_pybullet_ant_xml())
    expected.update(PUBLISHED_ANKLE_FROMTO[name])
    assert _geom_fromto(PRESETS[name].to_mjcf()) == expected


@pytest.mark.parametrize("name", sorted(PUBLISHED_SHA256))
def test_najarro_presets_equal_published_files(name):
    digest = hashlib.sha256(PRESETS[name].to_mjcf().encode()).hexdigest()
    assert digest == PUBLISHED_SHA256[name]


def test_registry_covers_every_published_body():
    assert set(PRESETS) == set(PUBLISHED_ANKLE_FROMTO)
    assert all(preset.name == name for name, preset in PRESETS.items())


def test_custom_scale_changes_only_that_leg():
    morphology = Morphology(ankle_scale=(1.0, 0.25, 1.0, 1.0))
    fromto = _geom_fromto(morphology.to_mjcf())
    assert fromto["right_ankle_geom"] == "0.0 0.0 0.0 -0.1 0.1 0.0"
    default = _geom_fromto(PRESETS["default"].to_mjcf())
    changed = {name for name in fromto if fromto[name] != default[name]}
    assert changed == {"right_ankle_geom"}
    assert morphology.ankle_lengths[1] == pytest.approx(0.25 * 0.4 * math.sqrt(2))


def test_ankle_geom_names_follow_leg_order():
    ends = _geom_fromto(PRESETS["default"].to_mjcf())
    for leg, name in enumerate(ANKLE_GEOM_NAMES):
        x, y = (float(v) for v in ends[name].split()[3:5])
        assert (x, y) == PRESETS["default"].ankle_ends[leg]


def test_get_morphology_accepts_names_and_objects():
    custom = Morphology((1.2, 1.0, 1.0, 0.7))
    assert get_morphology(custom) is custom
    assert get_morphology("long_front") is PRESETS["long_front"]


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError, match="unknown morphology 'damaged_left'") as info:
        get_morphology("damaged_left")
    for name in PRESETS:
        assert name in str(info.value)


def test_wrong_type_is_rejected():
    with pytest.raises(ValueError, match="preset name .* or a Morphology, got int"):
        get_morphology(3)


@pytest.mark.parametrize(
    "scale, message",
    [
        ((0.0, 1, 1, 1), r"ankle_scale\[0\] must be a finite number in \[0.05, 3.0\], got 0.0"),
        ((1, -0.5, 1, 1), r"ankle_scale\[1\] .* got -0.5"),
        ((1, 1, math.nan, 1), r"ankle_scale\[2\] .* got nan"),
        ((1, 1, 1, math.inf), r"ankle_scale\[3\] .* got inf"),
        ((1, 1, 1, 100.0), r"ankle_scale\[3\] .* got 100.0"),
        ((1, 1, 1), r"must have 4 entries \(one per leg\), got 3"),
        ("1111", r"must be a sequence of 4 numbers"),
        ((1, 1, "a", 1), r"ankle_scale\[2\] must be a number, got 'a'"),
        ((1, "1.5", 1, 1), r"ankle_scale\[1\] must be a number, got '1.5'"),
        ((True, 1, 1, 1), r"ankle_scale\[0\] must be a number, got True"),
        (np.array([1.0, 1.0, 1.0]), r"must have 4 entries \(one per leg\), got 3"),
        (np.ones((2, 2)), r"must be a sequence of 4 numbers \(one per leg\), got an array of shape \(2, 2\)$"),
        (np.array(["1", "1", "1", "1"]), r"ankle_scale\[0\] must be a number, got '1'"),
        (np.array([1, 1, 1, 0]), r"ankle_scale\[3\] must be a finite number in \[0.05, 3.0\], got 0"),
        (np.float64(1.0), r"must be a sequence of 4 numbers"),
    ],
)
def test_bad_scales_are_rejected(scale, message):
    with pytest.raises(ValueError, match=message):
        Morphology(ankle_scale=scale)


def test_a_numpy_array_of_scales_is_a_sequence_of_numbers():
    """np.array([1, 1, 1, 0.25]) was refused as "not a sequence of 4 numbers"."""
    morphology = Morphology(np.array([1, 1, 1, 0.25]))
    assert morphology.ankle_scale == (1.0, 1.0, 1.0, 0.25) and type(morphology.ankle_scale) is tuple
    assert all(type(s) is float for s in morphology.ankle_scale)
    assert morphology == PRESETS["damage_right"] and morphology.to_mjcf() == PRESETS["damage_right"].to_mjcf()
    assert Morphology(np.array([1.5, 1.5, 1, 1], dtype=np.float32)) == PRESETS["long_front"]


def test_extreme_allowed_scales_build():
    text = Morphology((0.05, MAX_ANKLE_SCALE, 1.0, 1.0)).to_mjcf()
    fromto = _geom_fromto(text)
    assert fromto["left_ankle_geom"] == "0.0 0.0 0.0 0.02 0.02 0.0"
    assert fromto["right_ankle_geom"] == "0.0 0.0 0.0 -1.2 1.2 0.0"


def test_equality_ignores_the_label():
    assert Morphology((0.25, 1.0, 1.0, 1.0)) == PRESETS["damage_left"]
    assert Morphology((0.25, 1.0, 1.0, 1.0)) != PRESETS["damage_right"]
