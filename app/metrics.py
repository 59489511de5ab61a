"""Prometheus metrics, correct across gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets it), values live in that directory
and ``/metrics`` aggregates every worker's files; otherwise each app has its own registry so
tests that build many apps never clash.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter as Counter_
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ScoreHistogram:
    """The ``fraud_score`` histogram, recorded through public ``Counter`` objects.

    ``Histogram.observe`` takes one score, and in multiprocess mode every increment is a write
    to a shared file (~1 µs), so a 1,000-score batch would pay milliseconds; prometheus-client
    has no bulk observe. Instead a batch is counted per bucket with numpy and each bucket it
    touches is one ``Counter`` increment (a counter labelled ``le``, not cumulative; another
    for the sum). Being standard counters, they are summed over workers by
    MultiProcessCollector; ``families`` then makes of them, at exposition time, the histogram
    a ``Histogram`` would expose (``_bucket``, ``_count``, ``_sum``, and ``_created`` where a
    Histogram has one). The counters themselves are never exposed. Scores are probabilities:
    a counter refuses a negative sum.
    """

    NAME = "fraud_score"
    DOCUMENTATION = "Fraud probability of scored transactions"
    #: The hidden counters: observations per bucket (label ``le``) and their sum.
    IN_BUCKET = "fraud_score_observations"
    SUM = "fraud_score_observed"

    def __init__(self, buckets: Sequence[float] = SCORE_BUCKETS) -> None:
        self._bounds = [*map(float, buckets), float("inf")]
        self._bound_array = np.array(self._bounds)
        self._les = [floatToGoString(bound) for bound in self._bounds]
        in_bucket = Counter(self.IN_BUCKET, "Scores per fraud_score bucket", ["le"], registry=None)
        self._in_bucket = in_bucket
        self._children = [in_bucket.labels(le) for le in self._les]
        self._sum = Counter(self.SUM, "Sum of fraud_score observations", registry=None)

    def observe(self, scores: Sequence[float]) -> None:
        """Record ``scores``, as ``Histogram.observe`` once per score would."""
        bounds = self._bounds
        if len(scores) < 8:  # numpy's call overhead only pays off for batches
            for score in scores:
                i = bisect_left(bounds, score)  # the first bound >= score (0 for a nan)
                if score <= bounds[i]:  # a nan is in no bucket, as with Histogram.observe
                    self._children[i].inc()
            total = sum(scores)
        else:
            array = np.asarray(scores, dtype=np.float64)
            where = np.searchsorted(self._bound_array, array, side="left")  # first bound >= score
            n = len(bounds)  # a nan is past the last bound
            counts = np.bincount(where, minlength=n)[:n].tolist()
            for child, count in zip(self._children, counts, strict=True):
                if count:
                    child.inc(count)
            total = float(array.sum())
        if scores:
            self._sum.inc(total)

    def collect(self) -> list[Metric]:
        """This process's histogram (a collector for the app's own registry)."""
        return self.families([*self._in_bucket.collect(), *self._sum.collect()])

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.NAME, self.DOCUMENTATION)]

    def families(self, counters: Iterable[Metric]) -> list[Metric]:
        """The histogram from the collected hidden counters (this process's, or merged over
        workers by MultiProcessCollector, which has no ``_created``). With a ``_created``, it
        follows as the gauge the text format makes of a Histogram's ``_created`` sample."""
        in_bucket: dict[str, float] = {}
        total, created = 0.0, None
        for metric in counters:
            for sample in metric.samples:
                if sample.name == f"{self.IN_BUCKET}_total":
                    in_bucket[sample.labels["le"]] = sample.value
                elif sample.name == f"{self.SUM}_total":
                    total = sample.value
                elif sample.name == f"{self.SUM}_created":
                    created = sample.value
        cumulative = accumulate(in_bucket.get(le, 0.0) for le in self._les)
        buckets = list(zip(self._les, cumulative, strict=True))
        out: list[Metric] = [HistogramMetricFamily(self.NAME, self.DOCUMENTATION, buckets, total)]
        if created is not None:
            out.append(GaugeMetricFamily(f"{self.NAME}_created", self.DOCUMENTATION, created))
        return out


class _AllWorkers:
    """Every worker's metrics (MultiProcessCollector), with the score counters re-exposed as
    the ``fraud_score`` histogram."""

    def __init__(self, scores: ScoreHistogram) -> None:
        self.scores = scores

    def collect(self) -> Iterator[Metric]:
        parts: list[Metric] = []
        for metric in multiprocess.MultiProcessCollector(registry=None).collect():
            if metric.name in (ScoreHistogram.IN_BUCKET, ScoreHistogram.SUM):
                parts.append(metric)
            else:
                yield metric
        yield from self.scores.families(parts)


class Metrics:
    """Request counter and latency, fraud-score histogram and flagged counter, the online
    store's time and results, and where each transaction's history came from."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fraud_http_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fraud_http_request_duration_seconds",
            "HTTP request latency by endpoint and status",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = ScoreHistogram()
        self.registry.register(self.scores)
        self.flagged = Counter(
            "fraud_flagged_transactions",
            "Transactions scored at or above the model threshold",
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "fraud_feature_store_duration_seconds",
            "Online store read-compute-write time per scoring request, by outcome",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_transactions = Counter(
            "fraud_feature_store_transactions",
            "Transactions the online store computed: recorded, duplicate or late (refused)",
            ["result"],
            registry=self.registry,
        )
        self.history_sources = Counter(
            "fraud_history_source_transactions",
            "Validated transactions by where their history came from: store, request, none",
            ["source"],
            registry=self.registry,
        )
        self.keys = Counter(
            "fraud_api_key_requests",
            "Authenticated scoring requests by API key name (API_KEYS)",
            ["key"],
            registry=self.registry,
        )

        self.feedback = Counter(
            "fraud_feedback_labels",
            "Labels received on POST /feedback by status",
            ["status"],
            registry=self.registry,
        )
        self.performance = Gauge(
            "fraud_model_performance",
            "The served model's performance at the last GET /monitoring/performance: realized "
            "(audit log joined with feedback labels) or estimated from the scores (CBPE)",
            ["kind", "metric"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )

    def observe_feedback(self, statuses: Iterable[str]) -> None:
        """Count labels by status (recorded / unchanged / superseded / unknown)."""
        for status, n in Counter_(statuses).items():
            self.feedback.labels(status).inc(n)

    def observe_performance(self, kind: str, values: dict[str, float | None]) -> None:
        """Set the ``kind`` (realized / estimated) performance gauges; None leaves one out."""
        for metric, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.performance.labels(kind, metric).set(value)

    def observe_store(self, seconds: float, outcome: str, counts: dict[str, int]) -> None:
        """One online-store read-compute-write (``outcome`` ok / unavailable) and how many
        transactions it recorded, found already recorded, or refused as too late."""
        self.store_latency.labels(outcome).observe(seconds)
        for result, n in counts.items():
            if n:
                self.store_transactions.labels(result).inc(n)

    def observe_sources(self, sources: Iterable[str]) -> None:
        """Count transactions by where their history came from (store / request / none)."""
        for source, n in Counter_(sources).items():
            self.history_sources.labels(source).inc(n)

    def observe_key(self, name: str) -> None:
        """Count one scoring request authenticated with the key called ``name``."""
        self.keys.labels(name).inc()

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint, str(status)).observe(seconds)

    def observe_scores(self, probabilities: Sequence[float], flagged: int) -> None:
        """Record scored probabilities and how many were flagged."""
        self.scores.observe(probabilities)
        if flagged:
            self.flagged.inc(flagged)

    def render(self) -> tuple[bytes, str]:
        """Prometheus text exposition (all workers in multiprocess mode) and content type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            registry.register(_AllWorkers(self.scores))
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
