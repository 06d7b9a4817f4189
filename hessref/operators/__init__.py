"""Matrix-free curvature operators: H, G and R as SciPy ``LinearOperator`` objects.

``hessian_operator``, ``ggn_operator`` and ``residual_operator`` wrap the batched
R-op of :mod:`hessref.core.rop` so that iterative methods (``eigsh``, ``cg``,
``minres``, :mod:`hessref.spectrum`) can use H, G = s Σ_i J_iᵀ A_i J_i and
R = H − G for models far too large for a dense P × P matrix. A product with a
block V (P, K) is::

    M V = Σ_chunks Σ_{i ∈ chunk} s M_i V,     s = 1/N (mean) or 1 (sum),

one batched :func:`hessref.core.rop.curvature_matmat` call (a few GEMMs over all rows
of the chunk and all K directions) per chunk of ``batch_size`` rows. Every chunk
keeps the *global* weight s (not 1/len(chunk)), so the sum over chunks is exact
for any chunking, a ragged last chunk included; different chunkings agree to
round-off.

Modules: :mod:`~hessref.operators.curvature` (the operator base),
:mod:`~hessref.operators.factories` (the validating constructors),
:mod:`~hessref.operators.chunks` (one chunk's product and :class:`ChunkError`),
:mod:`~hessref.operators.cache` (kept chunk state and its default budget),
:mod:`~hessref.operators.distributed` (the dask cluster protocol).

Design choices
--------------
- **float64, symmetric.** ``dtype=float64`` is passed explicitly (SciPy would
  otherwise probe the operator with an int8 vector); the adjoint and the
  transpose are the operator itself, so ``v @ op``, ``op.T @ v`` and
  ``op.rmatvec(v)`` all compute M v.
- **Deterministic.** Chunks are summed in a fixed order (chunk 0 first), the data
  are never resampled and no state changes between products, so the same
  product twice gives the same bits, serially, with any executor or on a dask
  cluster (given the same BLAS, one thread, on every worker).
- **Memory independent of N.** Nothing of size P × P is ever formed (except by
  ``to_dense``, for small models). With ``batch_size=None`` the chunk size is chosen
  per product so that the chunk workspace stays near ``WORKSPACE_BYTES`` (it depends
  on K and on the layer widths, not on N).
- **Fast by default: kept chunk state.** The direction-independent work of a product
  (the forward pass: activations, σ′, σ″; for H and R also the loss's backward δ_l)
  is kept across products for as many chunks as fit in ``cache_bytes``, by default
  min(¼ of the available memory, 2 GiB) (:mod:`~hessref.operators.cache`);
  ``cache_bytes=0`` turns it off. This saves up to one forward pass per product, gives
  bit-identical results, and applies to serial products. θ is copied at
  construction, so the kept state never goes stale.
- **One check per product.** ``op @ v``, ``op.matvec``, ``op.matmat`` and ``op @ V``
  check V once and scan the result for NaN/inf once (after the sum over chunks); only
  when that scan fails are the chunks recomputed one by one to name the failing chunk
  (:class:`ChunkError`).
- **One base, one hook.** :class:`CurvatureOperator` owns the checking, chunking,
  executors, kept state, summation order and errors; the curvature kind
  (:class:`hessref.core.kinds.Curvature`) supplies only the per-chunk product
  :func:`~hessref.operators.chunks.chunk_matmat`.
- **Executors.** With a :class:`concurrent.futures.Executor` (threads or
  processes) the map over chunks is ``executor.map(chunk_product, chunks, ...)``;
  the results are summed in chunk order, so the answer is bit-identical to the
  serial one. Every task ships its chunk of X, y, θ and V, so a process pool
  pays off only for large chunks.
- **dask clusters.** With a ``dask.distributed.Client`` (or its
  ``client.get_executor()``) the chunks and θ are scattered to the workers once
  per operator and only V travels per product; the partial sums are added on the
  workers in chunk order and one (P, K) result comes back (same bits as serial).
  A killed worker costs a recomputation, an error in a chunk arrives as
  :class:`ChunkError` naming the chunk, a lost scheduler gives ``ConnectionError``
  after ``op.scheduler_timeout`` seconds (see docs/distributed.md)::

      from dask.distributed import Client, LocalCluster
      with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
          with hessian_operator(model, theta, X, y, batch_size=5000, executor=client) as H:
              top = scipy.sparse.linalg.eigsh(H, k=10, which="LA")
- **Threads.** One operator may be shared by several threads (its counter and
  caches are locked).
"""

from hessref.operators.cache import DEFAULT_CACHE_FRACTION, DEFAULT_CACHE_LIMIT
from hessref.operators.chunks import ChunkError
from hessref.operators.curvature import WORKSPACE_BYTES, CurvatureOperator
from hessref.operators.distributed import SCHEDULER_TIMEOUT
from hessref.operators.factories import (
    curvature_operator,
    ggn_operator,
    hessian_operator,
    residual_operator,
)

__all__ = [
    "DEFAULT_CACHE_FRACTION",
    "DEFAULT_CACHE_LIMIT",
    "SCHEDULER_TIMEOUT",
    "WORKSPACE_BYTES",
    "ChunkError",
    "CurvatureOperator",
    "curvature_operator",
    "ggn_operator",
    "hessian_operator",
    "residual_operator",
]
