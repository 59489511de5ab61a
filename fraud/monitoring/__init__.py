"""Monitoring: the drift reference profile, drift statistics and reports, performance.

Owns: the ``drift`` and ``drift_profile`` configs (``config``), the profile fitted at training
time (``profile``), the statistics (``stats``), the drift report (``drift``), the audit log's
format and readers (``auditlog``), realized and estimated performance (``performance``), the
drift report's Markdown (``markdown``), the synthetic drift scenarios (``scenarios``), and
the HTML report of a pipeline run (``report``, drawn by ``figures``).
May import: ``fraud.data``, numpy; scipy only when a report is computed; ``scenarios`` also
the generator and pandas; ``figures`` matplotlib (none of the three is imported by serving).
"""
