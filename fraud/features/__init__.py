"""Point-in-time features, shared by training and serving so the two cannot disagree.

Owns: the spec (``spec``: feature names and order, windows, ``FeatureConfig``), the user
history computed from strictly earlier transactions (``history``), the state fitted on train
only and pickled into the artifact (``state``), and the batch and per-record paths from raw
fields to the model's matrix (``transform``; a parity test proves they agree bit for bit).
May import: ``fraud.data.schema``, numpy; pandas only inside the batch functions, so a serving
process that unpickles a ``FeatureState`` and scores records never loads it.
"""
