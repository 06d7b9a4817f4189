"""The curvature kind type: every spelling maps to one member, bad input names the argument."""

import pytest

from hessref.core.kinds import Curvature


@pytest.mark.parametrize(
    ("spelling", "member"),
    [
        ("H", Curvature.H),
        ("g", Curvature.G),
        ("R", Curvature.R),
        ("hessian", Curvature.H),
        ("GGN", Curvature.G),
        ("residual", Curvature.R),
        (Curvature.G, Curvature.G),
    ],
)
def test_parse_spellings(spelling, member):
    assert Curvature.parse(spelling) is member


def test_members_equal_their_0_2_mode_names():
    assert [m.value for m in Curvature] == ["hessian", "ggn", "residual"]
    assert Curvature.H == "hessian" and f"{Curvature.G}" == "G"
    assert [m.title for m in Curvature] == ["Hessian", "Gauss-Newton", "residual"]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"which: expected one of 'H', 'G', 'R'.*'fisher'"):
        Curvature.parse("fisher", argument="which")
    with pytest.raises(TypeError, match=r"kind: expected one of .* got int 3"):
        Curvature.parse(3)
