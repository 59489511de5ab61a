"""API keys on the scoring endpoints: hashed in the environment, named in metrics, never shown."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import pytest

from app import create_app
from app.keys import key_name, parse_api_keys
from tests.conftest import REPO
from tests.service.test_app import VALID

KEY = "k3y-for-the-pos-terminals"
OTHER = "another-key-for-batch-jobs"


def entry(name: str, key: str) -> str:
    return f"{name}:{hashlib.sha256(key.encode()).hexdigest()}"


API_KEYS = f"{entry('pos', KEY)}, {entry('batch', OTHER)}"


def test_the_scoring_endpoints_need_a_configured_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app"):
        app = create_app({"API_KEYS": API_KEYS})
    assert "scoring endpoints need an API key: batch, pos" in caplog.text
    assert KEY not in caplog.text
    assert hashlib.sha256(KEY.encode()).hexdigest() not in caplog.text
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        response = client.post("/predict", json=VALID, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "unauthorized"
    ok = client.post("/predict", json=VALID, headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    batch = client.post(
        "/predict/batch",
        json={"transactions": [VALID]},
        headers={"Authorization": f"Bearer {OTHER}"},
    )
    assert batch.status_code == 200
    assert client.post("/predict/batch", json={"transactions": [VALID]}).status_code == 401
    assert client.get("/health").status_code == 200  # probes need no key
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_api_key_requests_total{key="pos"} 1.0' in metrics
    assert 'fraud_api_key_requests_total{key="batch"} 1.0' in metrics
    assert KEY not in metrics


def test_without_keys_the_endpoints_are_open_and_a_worker_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="app"):
        app = create_app({"API_KEYS": ""})
    assert "no API_KEYS" in caplog.text
    assert app.test_client().post("/predict", json=VALID).status_code == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("pos", "entry 1 \\(pos\\): expected name:<sha256"),
        (f"pos:{'0' * 63}", "entry 1 \\(pos\\)"),
        (f"{entry('pos', KEY)},bad name:{'0' * 64}", "entry 2: the name must match"),
        (f"{entry('pos', KEY)},{entry('pos', OTHER)}", "the name pos is used twice"),
    ],
)
def test_a_bad_api_keys_setting_fails_the_boot_naming_the_entry(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_api_keys(raw)
    assert "0" * 63 not in str(info.value)


def test_key_name_compares_digests_and_names_the_key() -> None:
    keys = parse_api_keys(API_KEYS)
    assert key_name(f"Bearer {KEY}", keys) == "pos"
    assert key_name(f"bearer  {OTHER} ", keys) == "batch"
    assert key_name("Bearer ", keys) is None
    assert key_name("Bearer \ud800", keys) is None  # odd text is just a wrong key


def test_the_hash_command_prints_the_entry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app.keys", "pos"],
        input=KEY + "\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == entry("pos", KEY)
    short = subprocess.run(
        [sys.executable, "-m", "app.keys", "pos"], input=b"short\n", cwd=REPO, capture_output=True
    )
    assert short.returncode == 2
