"""The Open Inference Protocol (KServe V2): through Flask's test client, and with the official
client (``tritonclient[http]``) against a live gunicorn."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.v2 import MODEL_NAME
from fraud.features.transform import transform_records
from tests.service.test_app import VALID
from tests.service.test_server import Server

INFER = f"/v2/models/{MODEL_NAME}/infer"
KEY = "k" * 24
MAX_BATCH = 8


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app({"MAX_BATCH": MAX_BATCH})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def transactions(n: int = 4) -> list[dict[str, Any]]:
    """``n`` distinct valid transactions carrying their history (scored as the request says)."""
    amounts = [12.5, 249.99, 3000.0, 80.0, 7.25, 999.0]
    devices = ["mobile", "desktop", "tablet"]
    return [
        {
            **VALID,
            "amount": amounts[i % len(amounts)],
            "hour_of_day": (3 + 5 * i) % 24,
            "transaction_id": f"t-{i}",
            "device_type": devices[i % len(devices)],
        }
        for i in range(n)
    ]


def datatype(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    return "FP64" if isinstance(value, float) else "BYTES"


def named_inputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One V2 tensor per field, as JSON data."""
    return [
        {
            "name": name,
            "datatype": datatype(value),
            "shape": [len(items)],
            "data": [item[name] for item in items],
        }
        for name, value in items[0].items()
    ]


def batch_scores(client: FlaskClient, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = client.post("/predict/batch", json={"transactions": items}).get_json()
    assert body["n_errors"] == 0, body
    return body["results"]


def outputs(body: dict[str, Any]) -> dict[str, list[Any]]:
    return {o["name"]: o["data"] for o in body["outputs"]}


def feature_matrix(app: Flask, items: list[dict[str, Any]]) -> np.ndarray:
    """The features /predict/batch computes for ``items``, as float32."""
    state = app.extensions["fraud"]
    records = [state.validate(item)[0] for item in items]
    x, _ = transform_records(records, state.scorer.artifact.feature_state, None)
    return np.asarray(x, dtype=np.float32)


def test_health_and_server_metadata(client: FlaskClient, app: Flask) -> None:
    assert client.get("/v2/health/live").get_json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200
    assert ready.get_json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL_NAME}/ready").status_code == 200
    server = client.get("/v2").get_json()
    assert server["version"] == app.extensions["fraud"].scorer.version
    assert "binary_tensor" in server["extensions"]


def test_ready_mirrors_ready_while_draining(client: FlaskClient) -> None:
    from app.api import DRAINING

    DRAINING.set()
    try:
        native, v2 = client.get("/ready"), client.get("/v2/health/ready")
    finally:
        DRAINING.clear()
    assert native.status_code == v2.status_code == 503
    assert v2.get_json() == {"ready": False, "error": "shutting down: draining connections"}


def test_model_metadata_lists_fields_features_and_outputs(client: FlaskClient, app: Flask) -> None:
    scorer = app.extensions["fraud"].scorer
    meta = client.get(f"/v2/models/{MODEL_NAME}").get_json()
    assert meta["name"] == MODEL_NAME
    assert meta["versions"] == [scorer.version]
    assert meta["platform"]
    inputs = {i["name"]: i for i in meta["inputs"]}
    assert inputs["amount"]["datatype"] == "FP64"
    assert inputs["amount"]["parameters"]["required"] is True
    assert inputs["merchant_category"]["datatype"] == "BYTES"
    assert inputs["hour_of_day"]["datatype"] == "INT64"
    assert inputs["features"] == {
        **inputs["features"],
        "datatype": "FP32",
        "shape": [-1, len(scorer.feature_names)],
    }
    assert meta["parameters"]["feature_names"] == scorer.feature_names
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("fraud_probability", "FP64"),
        ("is_fraud", "BOOL"),
        ("risk_level", "BYTES"),
    ]
    versioned = client.get(f"/v2/models/{MODEL_NAME}/versions/{scorer.version}")
    assert versioned.get_json() == meta


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/v2/models/{MODEL_NAME}/infer", 405),
        ("POST", "/v2/health/live", 405),
        ("GET", "/v2/no/such/route", 404),
        ("DELETE", "/v2", 405),
    ],
)
def test_routing_errors_under_v2_have_the_v2_shape(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    body = response.get_json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str)
    assert body["error"]
    if status == 405:
        assert response.headers["Allow"]
    assert set(client.get("/no/such/route").get_json()) == {"error", "message"}  # native


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/other",
        "/v2/models/other/ready",
        f"/v2/models/{MODEL_NAME}/versions/000000000000",
    ],
)
def test_unknown_model_or_version_is_404_in_v2_form(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert list(response.get_json()) == ["error"]
    response = client.post(path.removesuffix("/ready") + "/infer", json={"inputs": []})
    assert response.status_code == 404
    assert "unknown" in response.get_json()["error"]


def test_named_inputs_score_as_predict_batch(client: FlaskClient) -> None:
    items = transactions(5)
    response = client.post(INFER, json={"id": "r-1", "inputs": named_inputs(items)})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model_name"] == MODEL_NAME
    assert body["id"] == "r-1"
    assert [o["shape"] for o in body["outputs"]] == [[5]] * 3
    out, expected = outputs(body), batch_scores(client, items)
    assert out["fraud_probability"] == [r["fraud_probability"] for r in expected]
    assert out["is_fraud"] == [r["is_fraud"] for r in expected]
    assert out["risk_level"] == [r["risk_level"] for r in expected]


def test_the_features_tensor_scores_as_predict_batch(client: FlaskClient, app: Flask) -> None:
    items = transactions(6)
    x = feature_matrix(app, items)
    tensor = {"name": "features", "datatype": "FP32", "shape": list(x.shape)}
    response = client.post(
        INFER,
        json={
            "inputs": [{**tensor, "data": x.tolist()}],
            "outputs": [{"name": "fraud_probability"}, {"name": "risk_level"}],
        },
    )
    assert response.status_code == 200, response.get_json()
    out = outputs(response.get_json())
    assert list(out) == ["fraud_probability", "risk_level"]
    expected = batch_scores(client, items)
    assert out["fraud_probability"] == [r["fraud_probability"] for r in expected]
    assert out["risk_level"] == [r["risk_level"] for r in expected]


def test_binary_tensors_in_and_out(client: FlaskClient, app: Flask) -> None:
    items = transactions(3)
    x = feature_matrix(app, items)
    blob = x.tobytes()
    header = (
        b'{"inputs":[{"name":"features","datatype":"FP32","shape":[3,%d],'
        b'"parameters":{"binary_data_size":%d}}],"parameters":{"binary_data_output":true}}'
        % (x.shape[1], len(blob))
    )
    response = client.post(
        INFER,
        data=header + blob,
        headers={"Inference-Header-Content-Length": str(len(header))},
        content_type="application/octet-stream",
    )
    assert response.status_code == 200, response.data[:300]
    size = int(response.headers["Inference-Header-Content-Length"])
    head = json.loads(response.data[:size])
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert sizes[:2] == [3 * 8, 3]
    probabilities = np.frombuffer(response.data[size : size + 24], "<f8")
    expected = [r["fraud_probability"] for r in batch_scores(client, items)]
    assert probabilities.tolist() == expected


def bad(inputs: list[dict[str, Any]], change: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [{**t, **change} if t["name"] == name else t for t in inputs]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda i: bad(i, {"data": ["x", "y"]}, "amount"), "input 'amount'"),
        (lambda i: bad(i, {"data": [-1.0, 2.0]}, "amount"), "input 'amount' row 0"),
        (lambda i: bad(i, {"shape": [3]}, "amount"), "input 'amount'"),
        (lambda i: bad(i, {"datatype": "FP99"}, "amount"), "input 'amount': unknown datatype"),
        (lambda i: [t for t in i if t["name"] != "location"], "input 'location' row 0"),
        (lambda i: bad(i, {"data": [25, 1]}, "hour_of_day"), "input 'hour_of_day' row 0"),
        (lambda i: [*i, {**i[0], "name": "colour"}], "unknown input 'colour'"),
        (lambda i: [*i, i[0]], "input 'amount' is given twice"),
        (lambda i: bad(i, {"shape": [1, 2]}, "amount"), "input 'amount'"),
        (lambda i: [{**i[0], "data": None}], "input 'amount'"),
        (lambda i: [], "'inputs' must be a non-empty list"),
        (lambda i: bad(i, {"parameters": {"binary_data_size": 16}}, "amount"), "binary_data_size"),
    ],
)
def test_bad_inputs_are_400_naming_the_input(
    client: FlaskClient, mutate: Any, message: str
) -> None:
    inputs = named_inputs(transactions(2))
    response = client.post(INFER, json={"inputs": mutate(inputs)})
    assert response.status_code == 400, response.get_json()
    assert message in response.get_json()["error"]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"datatype": "INT64", "shape": [1, 3], "data": [1, 2, 3]}, "must be FP32"),
        ({"datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}, "expected [n,"),
        ({"datatype": "FP32", "shape": [2, 2], "data": [1.0]}, "1 values for a shape of 4"),
        ({"datatype": "FP32", "shape": [1, 1], "data": ["a"]}, "FP32 data must be numbers"),
    ],
)
def test_bad_features_are_400(client: FlaskClient, tensor: dict[str, Any], message: str) -> None:
    response = client.post(INFER, json={"inputs": [{"name": "features", **tensor}]})
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_infinite_feature_and_features_with_fields_are_400(
    client: FlaskClient, app: Flask
) -> None:
    x = feature_matrix(app, transactions(2))
    x[1, 0] = np.inf
    blob = x.tobytes()
    header = b'{"inputs":[{"name":"features","datatype":"FP32","shape":[2,%d],"parameters":' % (
        x.shape[1]
    ) + b'{"binary_data_size":%d}}]}' % len(blob)
    response = client.post(
        INFER, data=header + blob, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400
    assert "row 1" in response.get_json()["error"]
    features = {"name": "features", "datatype": "FP32", "shape": [1, 1], "data": [0.0]}
    mixed = [features, *named_inputs(transactions(1))]
    response = client.post(INFER, json={"inputs": mixed})
    assert response.status_code == 400
    assert "comes alone" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"inputs": [{"name": "amount"}]}', 400),
        (
            b'{"inputs": [{"name": "amount", "datatype": "FP64", "shape": [1], "data": [1e999]}]}',
            400,
        ),
        (b"[]", 400),
    ],
)
def test_malformed_requests_never_500(client: FlaskClient, body: bytes, status: int) -> None:
    response = client.post(INFER, data=body, content_type="application/json")
    assert response.status_code == status
    assert "error" in response.get_json()


def test_too_many_rows_is_413(client: FlaskClient) -> None:
    response = client.post(INFER, json={"inputs": named_inputs(transactions(MAX_BATCH + 1))})
    assert response.status_code == 413
    assert str(MAX_BATCH) in response.get_json()["error"]


def test_infer_needs_the_api_key_when_keys_are_set(client: FlaskClient) -> None:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    keyed = create_app({"API_KEYS": f"tests:{digest}"}).test_client()
    body = {"inputs": named_inputs(transactions(1))}
    refused = keyed.post(INFER, json=body)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        keyed.post(INFER, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    ok = keyed.post(INFER, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert keyed.get("/v2/health/ready").status_code == 200  # probes need no key


# --- the official client against a live gunicorn -------------------------------------------


def test_tritonclient_against_gunicorn(tmp_path: Path, app: Flask) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    items = transactions(6)
    x = feature_matrix(app, items)
    server = Server(tmp_path)
    try:
        server.wait_ready()
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(MODEL_NAME)
        meta = client.get_model_metadata(MODEL_NAME)
        assert meta["name"] == MODEL_NAME
        # raw fields as named inputs, binary tensors both ways (the client's default)
        inputs = []
        for name, value in items[0].items():
            kind = datatype(value)
            column = [item[name] for item in items]
            array = np.array(column, dtype=object if kind == "BYTES" else None)
            tensor = httpclient.InferInput(name, [len(items)], kind)
            tensor.set_data_from_numpy(array.astype(np.int64) if kind == "INT64" else array)
            inputs.append(tensor)
        fields = client.infer(MODEL_NAME, inputs)
        # the precomputed features, FP32, answered as JSON
        features = httpclient.InferInput("features", list(x.shape), "FP32")
        features.set_data_from_numpy(x, binary_data=True)
        wanted = [
            httpclient.InferRequestedOutput(n, binary_data=False)
            for n in ("fraud_probability", "is_fraud", "risk_level")
        ]
        matrix = client.infer(MODEL_NAME, [features], outputs=wanted)
        with pytest.raises(InferenceServerException, match="unknown model"):
            client.infer("no-such-model", inputs)
        bad_amount = httpclient.InferInput("amount", [1], "BYTES")
        bad_amount.set_data_from_numpy(np.array(["abc"], dtype=object))
        with pytest.raises(InferenceServerException, match="input 'amount'"):
            client.infer(MODEL_NAME, [bad_amount])
        status, native = _post(server, {"transactions": items})
        client.close()
    finally:
        server.stop()
    assert status == 200
    expected = [r["fraud_probability"] for r in native["results"]]
    assert fields.as_numpy("fraud_probability").tolist() == expected
    assert fields.as_numpy("is_fraud").tolist() == [r["is_fraud"] for r in native["results"]]
    levels = [v.decode() for v in fields.as_numpy("risk_level").tolist()]
    assert levels == [r["risk_level"] for r in native["results"]]
    got = matrix.as_numpy("fraud_probability").tolist()
    assert got == expected
    assert matrix.as_numpy("risk_level").tolist() == levels  # JSON BYTES: str elements
    assert matrix.as_numpy("is_fraud").tolist() == [r["is_fraud"] for r in native["results"]]


def _post(server: Server, body: dict[str, Any]) -> tuple[int, Any]:
    from tests.service.test_server import request

    return request(f"{server.url}/predict/batch", body)


def test_the_api_document_lists_the_v2_routes(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    infer = paths["/v2/models/{model_name}/infer"]["post"]
    assert infer["parameters"][0]["schema"]["enum"] == [MODEL_NAME]
    assert {"400", "401", "404", "413"} <= set(infer["responses"])
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/{model_name}"):
        assert client.get(path.replace("{model_name}", MODEL_NAME)).status_code == 200


def test_raw_transactions_get_the_stores_history_as_in_predict_batch(client: FlaskClient) -> None:
    sample = client.get("/sample-transaction").get_json()
    items = [{**sample, "transaction_id": f"v2-store-{i}", "amount": 10.0 + i} for i in range(3)]
    response = client.post(INFER, json={"inputs": named_inputs(items)})
    assert response.status_code == 200, response.get_json()
    # the same transactions again: the store has them (scored as of their time, not recounted)
    expected = batch_scores(client, items)
    assert {r["history_source"] for r in expected} == {"store"}
    assert outputs(response.get_json())["fraud_probability"] == [
        r["fraud_probability"] for r in expected
    ]
    missing = client.post(INFER, json={"inputs": named_inputs([{**sample, "transaction_id": 1}])})
    assert missing.status_code == 400
    assert "input 'transaction_id' row 0" in missing.get_json()["error"]
