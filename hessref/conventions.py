"""Alias kept for 0.1 code: ``hessref.conventions`` is :mod:`hessref.oracle.conventions`."""

import sys

from hessref.oracle import conventions as _module

sys.modules[__name__] = _module
