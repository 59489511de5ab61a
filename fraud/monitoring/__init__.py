"""Monitoring: the drift reference profile, drift statistics and reports.

Owns: the ``drift`` and ``drift_profile`` configs (``config``), the profile fitted at training
time (``profile``), the statistics (``stats``), the report and the prediction-log parsing
(``drift``), its Markdown (``markdown``), and the synthetic drift scenarios (``scenarios``).
May import: ``fraud.data``, numpy; scipy only when a report is computed; ``scenarios`` also
the generator and pandas (it is never imported by serving).
"""
