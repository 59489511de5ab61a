"""Transaction data: the schema, sources, validation, the splits, and the synthetic generator.

Owns: the column names and category values (``schema``, imported by every other concern and by
serving), a user's own CSV or Parquet file mapped onto them (``external``), table validation
(``validate``), the share and date splits (``split``), and the deterministic synthetic world
(``synthetic``). May import: numpy, pandas and pyarrow (``schema`` imports
nothing), ``fraud.config``, ``fraud.files``. Imports no other fraud subpackage.
"""
