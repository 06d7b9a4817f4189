"""The curvature kind: which of H, G and R (docs/theory.md (5.1)-(5.3), H = G + R) is meant.

One type names the three matrices everywhere (engine modes, operators, layerwise,
experiments, the CLI). :class:`Curvature` is a ``str`` enum whose values are the 0.2
mode names, so ``Curvature.H == "hessian"`` and code written against 0.2 strings keeps
working; :meth:`Curvature.parse` is the one place that turns a user's spelling into it.

Examples
--------
>>> Curvature.parse("G")
<Curvature.G: 'ggn'>
>>> Curvature.parse("hessian") is Curvature.H
True
>>> Curvature.R.symbol, Curvature.R.title
('R', 'residual')
"""

from __future__ import annotations

import enum
from typing import Any


class Curvature(str, enum.Enum):
    """H (the Hessian), G (the generalized Gauss-Newton matrix) or R = H − G (the residual).

    The value of each member is its 0.2 mode name (``"hessian"``, ``"ggn"``,
    ``"residual"``); the member name is the matrix's letter.
    """

    H = "hessian"
    G = "ggn"
    R = "residual"

    @property
    def symbol(self) -> str:
        """The matrix's letter, ``"H"``, ``"G"`` or ``"R"``."""
        return self.name

    @property
    def title(self) -> str:
        """Words for messages and titles: ``"Hessian"``, ``"Gauss-Newton"``, ``"residual"``."""
        return _TITLES[self.name]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: Any, argument: str = "kind") -> Curvature:
        """Return the member named by ``value``.

        Parameters
        ----------
        value : Curvature or str
            A member, its letter (``"H"``, ``"G"``, ``"R"``, either case) or its 0.2
            mode name (``"hessian"``, ``"ggn"``, ``"residual"``, either case).
        argument : str
            The argument's name, for the error message.

        Raises
        ------
        TypeError
            ``value`` is not a string (or member).
        ValueError
            An unknown name; the message lists the accepted spellings.
        """
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(
                f"{argument}: expected one of 'H', 'G', 'R' (or 'hessian', 'ggn', 'residual'), "
                f"got {type(value).__name__} {value!r}"
            )
        key = value.strip().lower()
        for member in cls:
            if key in (member.name.lower(), member.value):
                return member
        raise ValueError(
            f"{argument}: expected one of 'H', 'G', 'R' (or 'hessian', 'ggn', 'residual'), "
            f"got {value!r}"
        )


_TITLES = {"H": "Hessian", "G": "Gauss-Newton", "R": "residual"}

__all__ = ["Curvature"]
