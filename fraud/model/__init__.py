"""Training side: fitting each model kind, the threshold, metrics, plots data and the gate.

Owns: the model configs and their ``fit`` (``train``), compiling a booster into the serving
runtime (``compile``), threshold choice and metrics (``metrics``), the plot data of DVC and
the report (``plots``), and the quality gate (``gate``). May import: ``fraud.runtime`` (the
runtimes it builds), ``fraud.features``, ``fraud.data``, ``fraud.config``, the numpy metric
cores serving shares (``fraud.monitoring.performance``), XGBoost and scikit-learn (lazily).
Nothing in serving imports this package.
"""
