"""The Open Inference Protocol (KServe V2) beside the native API, for clients and gateways
that speak it (Triton's ``tritonclient``, KServe, Seldon).

One model, ``fraud-detector``, whose version is the served artifact's (``/model/info``). Its
``infer`` takes either

* raw transaction fields as named inputs, one tensor of shape ``[n]`` per field (BYTES for
  text and timestamps, FP64 or INT64 for numbers, BOOL or INT64 for flags): validated, given
  their history (the request's or the online store's) and scored by the very path of
  ``POST /predict/batch`` (``app.predict``), so the scores are equal; or
* ``features``, a precomputed FP32 (or FP64) matrix ``[n, n_features]`` in the artifact's
  feature order (NaN: missing), scored directly by the model's runtime: no history, no
  reasons, nothing recorded in the store or the drift log.

Outputs: ``fraud_probability`` (FP64), ``is_fraud`` (BOOL, the artifact's threshold) and
``risk_level`` (BYTES), each ``[n]``, as JSON or binary (``app.tensors``). Errors are the
protocol's ``{"error": "..."}``: 400 naming the input, 401 without a valid API key (when
``API_KEYS`` is set, as for /predict), 404 for another model or version, 413, 503 (feature
store, draining).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
from flask import Blueprint, Response, current_app, request

from app.api import readiness
from app.errors import ApiError
from app.keys import key_name
from app.predict import _score, parse_json, read_body
from app.schemas import FLAG, INTEGER, NUMBER
from app.tensors import BYTES, Tensor, TensorError, decode_inputs, encode_outputs, split_body
from fraud.runtime.scoring import RISK_LEVELS

v2 = Blueprint("v2", __name__, url_prefix="/v2")

MODEL_NAME = "fraud-detector"
PLATFORM = "fraud-scoring"  # the runtime of fraud.runtime: compiled trees, no framework server
FEATURES = "features"
OUTPUTS = {"fraud_probability": "FP64", "is_fraud": "BOOL", "risk_level": BYTES}
#: The risk level names, indexed by ``RiskBands.codes``.
_LEVELS = np.array(RISK_LEVELS, dtype=object)
HEADER_LENGTH = "Inference-Header-Content-Length"
#: A field kind -> the datatype the metadata gives (others are accepted as the rules allow).
KIND_DATATYPE = {NUMBER: "FP64", INTEGER: "INT64", FLAG: "BOOL"}


class V2Error(Exception):
    """An error answered in the protocol's shape, ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        # a lone surrogate from the request (an input's name) echoed here must not make
        # the answer unencodable (orjson refuses it: a 500)
        message = message.encode("utf-8", "backslashreplace").decode()
        super().__init__(message)
        self.status = status
        self.message = message


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


@v2.errorhandler(V2Error)
def _v2_error(exc: V2Error) -> Response:
    response = _json({"error": exc.message}, exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fraud-scoring"'
    return response


@v2.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _json({"error": exc.message}, exc.status)


def _state() -> Any:
    return current_app.extensions["fraud"]


def _model(name: str, version: str | None = None) -> Any:
    """The scorer when ``name`` (and ``version``, if given) is the served model, else 404."""
    scorer = _state().scorer
    if name != MODEL_NAME:
        raise V2Error(404, f"unknown model '{name[:100]}': this server serves '{MODEL_NAME}'")
    if version is not None and version != scorer.version:
        raise V2Error(
            404, f"unknown version '{version[:40]}' of '{name}': it serves {scorer.version}"
        )
    return scorer


@v2.get("")
def server_metadata() -> Response:
    """Server metadata: name, version, protocol extensions."""
    return _json(
        {"name": PLATFORM, "version": _state().scorer.version, "extensions": ["binary_tensor"]}
    )


@v2.get("/health/live")
def live() -> Response:
    """Liveness: the worker answers."""
    return _json({"live": True})


@v2.get("/health/ready")
@v2.get("/models/<name>/ready")
@v2.get("/models/<name>/versions/<version>/ready")
def ready(name: str | None = None, version: str | None = None) -> Response:
    """Readiness, as /ready: the model verified, the feature store answering, not draining."""
    if name is not None:
        _model(name, version)
    out, status = readiness(_state())
    return _json(
        {"ready": out["ready"], **({"error": out["error"]} if "error" in out else {})}, status
    )


@v2.get("/models/<name>")
@v2.get("/models/<name>/versions/<version>")
def metadata(name: str, version: str | None = None) -> Response:
    """Model metadata: the named raw-field inputs, the ``features`` matrix, the outputs."""
    scorer = _model(name, version)
    fields = _state().validate.fields
    inputs = [
        {
            "name": field,
            "datatype": KIND_DATATYPE.get(spec.kind, BYTES),
            "shape": [-1],
            "parameters": {"required": spec.required, "description": spec.description},
        }
        for field, spec in fields.items()
    ]
    inputs.append(
        {
            "name": FEATURES,
            "datatype": "FP32",
            "shape": [-1, len(scorer.feature_names)],
            "parameters": {
                "required": False,
                "description": "precomputed features instead of the raw fields, in the order "
                "of parameters.feature_names (NaN: missing)",
            },
        }
    )
    return _json(
        {
            "name": MODEL_NAME,
            "versions": [scorer.version],
            "platform": PLATFORM,
            "inputs": inputs,
            "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in OUTPUTS.items()],
            "parameters": {
                "feature_names": scorer.feature_names,
                "threshold": scorer.threshold,
                "kind": _state().manifest.get("kind"),
            },
        }
    )


@v2.post("/models/<name>/infer")
@v2.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    """Score the request's tensors: named raw fields, or the ``features`` matrix."""
    started = time.perf_counter()
    scorer = _model(name, version)
    _authorize()
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise V2Error(415, f"Content-Encoding {encoding[:20]} is not supported; send identity")
    try:
        head, binary = split_body(
            read_body(request.environ, current_app.config["MAX_CONTENT_LENGTH"]),
            request.headers.get(HEADER_LENGTH),
        )
        body = parse_json(head)
        tensors = decode_inputs(body, binary, head)
        wanted, as_binary = _requested(body)
    except TensorError as exc:
        raise V2Error(400, str(exc)) from None
    names = [t.name for t in tensors]
    if FEATURES in names:
        if len(tensors) > 1:
            raise V2Error(400, f"input '{FEATURES}' comes alone, not with {names[:5]}")
        probabilities = _score_features(tensors[0], scorer)
    else:
        probabilities = _score_fields(tensors)
    is_fraud = probabilities >= scorer.threshold
    levels = _LEVELS[scorer.bands.codes(probabilities)].tolist()  # RiskBands.level's
    values = {"fraud_probability": probabilities, "is_fraud": is_fraud, "risk_level": levels}
    header = {"model_name": MODEL_NAME, "model_version": scorer.version}
    if isinstance(body.get("id"), str):
        header["id"] = body["id"]
    header, blob = encode_outputs(header, [(n, OUTPUTS[n], values[n]) for n in wanted], as_binary)
    payload = orjson.dumps(header)
    response = Response(payload + blob, content_type="application/json")
    if blob or as_binary:
        response.headers[HEADER_LENGTH] = str(len(payload))
        response.content_type = "application/octet-stream"
    response.headers["X-Processing-Time-Ms"] = f"{(time.perf_counter() - started) * 1000:.3f}"
    return response


def _authorize() -> None:
    """401 unless the request carries an accepted API key (when ``API_KEYS`` is set)."""
    keys = current_app.extensions.get("api_keys")
    if not keys:
        return
    found = key_name(request.headers.get("Authorization", ""), keys)
    if found is None:
        raise V2Error(401, "a valid API key is required (Bearer)")
    _state().metrics.observe_key(found)


def _requested(body: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The outputs asked for (all by default) and those to send as binary."""
    parameters = body.get("parameters") or {}
    binary_default = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    outputs = body.get("outputs")
    if outputs is None:
        return list(OUTPUTS), set(OUTPUTS) if binary_default else set()
    if not isinstance(outputs, list):
        raise TensorError("'outputs' must be a list of {name} objects")
    wanted, as_binary = [], set()
    for item in outputs:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in OUTPUTS:
            raise TensorError(f"unknown output {str(name)[:40]!r}; outputs: {', '.join(OUTPUTS)}")
        wanted.append(name)
        flag = (item.get("parameters") or {}).get("binary_data", binary_default)
        if flag is True:
            as_binary.add(name)
    return wanted, as_binary


def _rows(tensors: list[Tensor]) -> int:
    """The number of rows all named inputs share (each ``[n]`` or ``[n, 1]``)."""
    n = tensors[0].shape[0] if tensors[0].shape else -1
    for t in tensors:
        if len(t.shape) not in (1, 2) or t.shape[0] != n or t.shape[1:] not in ((), (1,)):
            raise V2Error(
                400,
                f"input '{t.name}': shape {list(t.shape)}; every named input is [n] with "
                f"one n (here {n})",
            )
    return n


def _check_rows(n: int) -> None:
    if n < 1:
        raise V2Error(400, "the inputs have no rows")
    if n > int(current_app.config["MAX_BATCH"]):
        raise V2Error(413, f"{n} rows; at most {current_app.config['MAX_BATCH']}")


def _score_fields(tensors: list[Tensor]) -> np.ndarray:
    """Probabilities of raw transaction fields, through /predict/batch's path."""
    state = _state()
    fields = state.validate.fields
    unknown = [t.name for t in tensors if t.name not in fields]
    if unknown:
        raise V2Error(
            400,
            f"unknown input '{unknown[0][:60]}': inputs are the transaction fields "
            f"({', '.join(list(fields)[:8])}, ... as GET /v2/models/{MODEL_NAME} lists) or "
            f"'{FEATURES}' alone",
        )
    n = _rows(tensors)
    _check_rows(n)
    columns = [_column(t) for t in tensors]
    names = [t.name for t in tensors]
    items = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    records = []
    for i, (record, _, errors) in enumerate(state.validate.batch(items)):
        if errors:
            raise V2Error(400, _describe(errors, i))
        records.append(record)
    results, refused, _, _ = _score(current_app, records)
    if refused:
        i = min(refused)
        raise V2Error(400, _describe(refused[i], i) + " (the other rows were scored)")
    return np.array([results[k]["fraud_probability"] for k in range(n)], dtype=np.float64)


def _column(tensor: Tensor) -> list[Any]:
    """A named input's values as Python scalars; NaN (JSON null) is an absent value."""
    if tensor.datatype == BYTES:
        return tensor.values
    values = tensor.values.reshape(-1)
    if values.dtype.kind == "f" and np.isnan(values).any():
        return [None if v != v else v for v in values.tolist()]
    return values.tolist()


def _describe(errors: list[dict[str, str]], row: int) -> str:
    """A row's validation errors, each naming its input."""
    parts = [f"input '{e['field']}' row {row}: {e['message']}" for e in errors[:5]]
    return "; ".join(parts)


def _score_features(tensor: Tensor, scorer: Any) -> np.ndarray:
    """Probabilities of a precomputed ``[n, n_features]`` matrix, by the runtime directly."""
    width = len(scorer.feature_names)
    if tensor.datatype not in ("FP32", "FP64"):
        raise V2Error(400, f"input '{FEATURES}' must be FP32 (or FP64), not {tensor.datatype}")
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        raise V2Error(
            400, f"input '{FEATURES}': shape {list(tensor.shape)}, expected [n, {width}]"
        )
    _check_rows(tensor.shape[0])
    x = np.asarray(tensor.values, dtype=np.float64).reshape(tensor.shape)
    if np.isinf(x).any():
        row, column = (int(v[0]) for v in np.nonzero(np.isinf(x)))
        raise V2Error(
            400,
            f"input '{FEATURES}' row {row}: {scorer.feature_names[column]} is infinite "
            "(NaN marks a missing value)",
        )
    probabilities = np.asarray(scorer.artifact.model.predict_proba(x), dtype=np.float64)
    _state().metrics.observe_scores(
        probabilities.tolist(), int((probabilities >= scorer.threshold).sum())
    )
    return probabilities
