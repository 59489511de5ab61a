"""V2 tensors (app.tensors): JSON and binary inputs decoded, outputs encoded, errors named."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from app.tensors import TensorError, decode_inputs, encode_outputs, split_body


def tensor(name: str = "x", datatype: str = "FP64", shape: list[int] | None = None, **rest):
    return {"name": name, "datatype": datatype, "shape": shape or [2], **rest}


def packed_strings(*texts: str) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def test_json_data_nested_or_flat_and_null_as_nan() -> None:
    (flat,) = decode_inputs({"inputs": [tensor(shape=[2, 2], data=[1, 2.5, None, 4])]}, b"")
    (nested,) = decode_inputs({"inputs": [tensor(shape=[2, 2], data=[[1, 2.5], [None, 4]])]}, b"")
    for t in (flat, nested):
        assert t.shape == (2, 2)
        assert t.values.dtype == np.float64
        assert t.values[:2].tolist() == [1.0, 2.5]
        assert math.isnan(t.values[2])


def test_binary_numbers_bool_and_bytes_in_order() -> None:
    numbers = np.array([1.5, -2.0], dtype="<f4").tobytes()
    flags = bytes([1, 0])
    texts = packed_strings("café", "")
    inputs = [
        tensor("a", "FP32", parameters={"binary_data_size": len(numbers)}),
        tensor("b", "BOOL", parameters={"binary_data_size": len(flags)}),
        tensor("c", "BYTES", parameters={"binary_data_size": len(texts)}),
        tensor("d", "INT64", data=[7, 8]),
    ]
    a, b, c, d = decode_inputs({"inputs": inputs}, numbers + flags + texts)
    assert a.values.tolist() == [1.5, -2.0]
    assert b.values.tolist() == [True, False]
    assert c.values == ["café", ""]
    assert d.values.tolist() == [7, 8]


@pytest.mark.parametrize(
    ("inputs", "binary", "message"),
    [
        ([tensor(data=[1.0])], b"", "1 values for a shape of 2"),
        ([tensor(data=["1", "2"])], b"", "FP64 data must be numbers"),
        ([tensor(datatype="INT64", data=[1.5, 2])], b"", "INT64 data must be integers"),
        ([tensor(datatype="INT64", data=[True, 2])], b"", "INT64 data must be integers"),
        ([tensor(datatype="INT8", data=[1, 300])], b"", "out of range for INT8"),
        ([tensor(datatype="BYTES", data=[1, 2])], b"", "BYTES data must be strings"),
        ([tensor(datatype="BOOL", data=[1, 0])], b"", "BOOL data must be booleans"),
        ([tensor(shape=[-1], data=[])], b"", "shape must be a list of non-negative"),
        ([tensor(shape=[True, 2], data=[1, 2])], b"", "shape must be"),
        ([tensor()], b"", "neither data nor binary_data_size"),
        ([tensor(parameters={"binary_data_size": 16})], b"\0" * 8, "beyond the request's"),
        ([tensor(parameters={"binary_data_size": 8})], b"\0" * 8, "8 bytes of binary data"),
        ([tensor(data=[1, 2])], b"\0", "1 bytes of binary data belong to no input"),
        (
            [tensor(datatype="BOOL", parameters={"binary_data_size": 2})],
            bytes([1, 7]),
            "BOOL bytes must be 0 or 1",
        ),
        (
            [tensor(datatype="BYTES", parameters={"binary_data_size": 6})],
            struct.pack("<I", 9) + b"ab",
            "overruns",
        ),
        (
            [tensor(datatype="BYTES", parameters={"binary_data_size": 7})],
            struct.pack("<I", 3) + b"\xff\xfe\xfd",
            "not UTF-8",
        ),
    ],
)
def test_bad_tensors_are_named(inputs: list, binary: bytes, message: str) -> None:
    with pytest.raises(TensorError, match=r"input 'x'|belong to no input") as err:
        decode_inputs({"inputs": inputs}, binary)
    assert message in str(err.value)


def test_split_body_by_the_header_length() -> None:
    assert split_body(b'{"a":1}xyz', "7") == (b'{"a":1}', b"xyz")
    assert split_body(b"{}", None) == (b"{}", b"")
    for bad in ("-1", "abc", "99"):
        with pytest.raises(TensorError, match="Inference-Header-Content-Length"):
            split_body(b"{}", bad)


def test_outputs_as_json_and_binary() -> None:
    p = np.array([0.25, 0.75])
    header, blob = encode_outputs(
        {"model_name": "m"},
        [("p", "FP64", p), ("flag", "BOOL", p > 0.5), ("level", "BYTES", ["low", "high"])],
        {"p", "level"},
    )
    json.dumps(header)  # JSON-ready
    p_out, flag_out, level_out = header["outputs"]
    assert flag_out == {"name": "flag", "datatype": "BOOL", "shape": [2], "data": [False, True]}
    assert p_out["parameters"]["binary_data_size"] == 16
    assert "data" not in p_out
    assert blob[:16] == p.astype("<f8").tobytes()
    assert blob[16:] == packed_strings("low", "high")
    assert level_out["parameters"]["binary_data_size"] == len(packed_strings("low", "high"))
