"""Transaction data: the schema, validation and the time split, and the synthetic generator.

Owns: the column names and category values (``schema``, imported by every other concern and by
serving), table validation and the out-of-time split (``validate``), and the deterministic
synthetic world (``synthetic``). May import: numpy, pandas and pyarrow (``schema`` imports
nothing), ``fraud.config``, ``fraud.files``. Imports no other fraud subpackage.
"""
