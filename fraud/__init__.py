"""Core library of the fraud-detection pipeline: pure, typed functions with no file paths.

Subpackages by concern; arrows point down only (a module imports from its own subpackage or
from one listed after it):

* ``model``      training, metrics, threshold, the gate; compiles a booster into the runtime
* ``monitoring`` drift statistics, the reference profile, drift reports
* ``runtime``    the artifact format, one runtime per model kind, scoring (what serving loads)
* ``features``   the feature spec, point-in-time history, fitted state, batch and record paths
* ``data``       the transaction schema, validation, the time split, the synthetic generator
* ``config``, ``files``: typed config sections, atomic writes, hashes (used by all)

``runtime``, ``features``, ``data.schema`` and ``monitoring`` (but its scenarios) never import
``model`` or pandas, XGBoost or scikit-learn at import time: the serving image has none of them.
The shells (``stages/``, ``app/``, ``scripts/``) import from here, never the other way round.
"""
