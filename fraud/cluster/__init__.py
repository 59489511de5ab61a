"""The Dask engine (``compute=dask``): the single-machine core functions run per partition.

Owns: the ``compute`` config section (``config``, no heavy imports: every stage parses it),
opening or joining a cluster (``engine``), and the distributed stage bodies: sharded generation
and the time split (``data``), per-entity featurization (``features``), ``xgboost.dask``
training and scoring where the data lies (``training``). Dask is imported only by the modules
that run on it, so ``compute=local`` never loads it.

May import: data, features, model, runtime (it reuses their functions; nothing imports it but
the stages).
"""
