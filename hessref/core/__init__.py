"""The engine: activations, losses, the MLP and its backprop, input checks, the R-op,
exact dense H, G and R, and the public derivative functions (docs/theory.md §1-§7).

``textbook`` is a second, deliberately slow implementation of H, G and R (docs/theory.md
§8) used to check the engine on small problems; nothing in the engine uses it.

Nothing in this package imports from the layers above it (operators, spectrum,
experiments, oracle, CLI).
"""
