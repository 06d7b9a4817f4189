"""The engine: activations, losses, the MLP and its backprop, input checks, the R-op,
exact dense H, G and R, and the public derivative functions.

Nothing in this package imports from the layers above it (operators, spectrum,
experiments, oracle, CLI).
"""
