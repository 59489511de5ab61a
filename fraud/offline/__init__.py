"""Offline batch scoring: a file of raw transactions scored with a verified model artifact.

Owns: reading and writing the transaction tables a user scores (``tables``: CSV or Parquet by
suffix, written atomically) and scoring one (``score``): its columns mapped and checked like
the pipeline's own input (``fraud.data``), each row's history computed from the file itself,
point in time, by the batch feature code training uses (``fraud.features``), and the rows
scored by the service's own ``fraud.runtime.scoring.Scorer`` (score, decision, risk level,
reasons), in the file's order.

Its own subpackage, not part of ``fraud.runtime``: it needs pandas and pyarrow, which the
serving image does not have, and it is neither training code (``fraud.model``) nor a shell.
May import: ``fraud.data``, ``fraud.features``, ``fraud.runtime``, numpy, pandas, pyarrow.
"""
