"""Alias kept for 0.1 code: ``hessref.compare`` is :mod:`hessref.oracle.compare`."""

import sys

from hessref.oracle import compare as _module

sys.modules[__name__] = _module
