"""Tensors of the Open Inference Protocol (KServe V2) over HTTP: decoding a request's inputs
and encoding a response's outputs, as JSON ``data`` or with the binary tensor extension.

The binary extension (what ``tritonclient`` sends and asks for by default): the body is a
JSON header of ``Inference-Header-Content-Length`` bytes followed by each binary tensor's raw
bytes, in input order; a tensor in binary says so with ``parameters.binary_data_size``. Numbers
are little-endian in row-major order, BOOL one byte each, and BYTES elements each a 4-byte
little-endian length followed by the bytes. Pure: no web framework; errors are ``TensorError``
(the 400 the protocol answers), each naming the tensor.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

#: V2 datatype -> numpy dtype (little-endian); BYTES are Python ``str`` lists here.
NUMERIC = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"
#: Python types a JSON element of each datatype family may have.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "b": (bool,),
    "u": (int,),
    "i": (int,),
    "f": (int, float),
}


class TensorError(ValueError):
    """A request tensor that cannot be read: answered 400, the message names the tensor."""


@dataclass(frozen=True)
class Tensor:
    """One decoded input: ``values`` is a numpy array of ``shape`` (a list of str for BYTES)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: Any


def _flatten(data: Any) -> list[Any]:
    """JSON ``data``, flat (the protocol allows it nested in the tensor's shape)."""
    if not isinstance(data, list):
        return [data]
    if list not in set(map(type, data)):  # C-level: the common case, already flat
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _shape(name: str, raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        type(d) is int and d >= 0 for d in raw
    ):  # bool is no dimension
        raise TensorError(f"input '{name}': shape must be a list of non-negative integers")
    return tuple(raw)


def _rows_of_numbers(data: Any, size: int, dtype: np.dtype) -> np.ndarray | None:
    """A float tensor's JSON rows (``[[...], ...]``, every element a number, none a boolean:
    the caller knows) as a flat array, without flattening them in Python; None when they are
    not (the general path then decides, and words any error). ``sum`` is the type check: it
    raises TypeError for a string, null or list, and a boolean was ruled out before."""
    if not data or set(map(type, data)) != {list} or sum(map(len, data)) != size:
        return None
    try:
        sum(map(sum, data))
        return np.array(data, dtype=dtype).reshape(-1)  # ValueError: rows of unequal length
    except (TypeError, ValueError, OverflowError):
        return None


def _from_json(name: str, datatype: str, data: Any, size: int, booleans: bool = True) -> Any:
    if not booleans and datatype in NUMERIC and NUMERIC[datatype].kind == "f":
        values = _rows_of_numbers(data, size, NUMERIC[datatype])
        if values is not None:
            return values
    flat = _flatten(data)
    if len(flat) != size:
        raise TensorError(f"input '{name}': {len(flat)} values for a shape of {size} elements")
    if datatype == BYTES:
        if not set(map(type, flat)) <= {str}:
            raise TensorError(f"input '{name}': BYTES data must be strings")
        return flat
    dtype = NUMERIC[datatype]
    types = set(_JSON_TYPES[dtype.kind])
    found = set(map(type, flat))
    if dtype.kind == "f" and type(None) in found:  # JSON has no NaN: null is a missing value
        flat = [math.nan if v is None else v for v in flat]
        found = (found - {type(None)}) | {float}
    if not found <= types:
        kind = {"b": "booleans", "f": "numbers"}.get(dtype.kind, "integers")
        raise TensorError(f"input '{name}': {datatype} data must be {kind}")
    try:
        return np.array(flat, dtype=dtype)
    except OverflowError:
        raise TensorError(f"input '{name}': a value is out of range for {datatype}") from None


def _bytes_elements(name: str, raw: bytes, size: int) -> list[str]:
    """BYTES elements of the binary extension, decoded as UTF-8 text."""
    out: list[str] = []
    offset = 0
    for _ in range(size):
        if offset + 4 > len(raw):
            raise TensorError(f"input '{name}': binary BYTES data ends before {size} elements")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise TensorError(f"input '{name}': binary BYTES element overruns its data")
        try:
            out.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise TensorError(f"input '{name}': BYTES element is not UTF-8 text") from None
        offset += length
    if offset != len(raw):
        raise TensorError(f"input '{name}': binary BYTES data is longer than {size} elements")
    return out


def _from_binary(name: str, datatype: str, raw: bytes, size: int) -> Any:
    if datatype == BYTES:
        return _bytes_elements(name, raw, size)
    dtype = NUMERIC[datatype]
    if len(raw) != size * dtype.itemsize:
        raise TensorError(
            f"input '{name}': {len(raw)} bytes of binary data for {size} {datatype} elements"
        )
    values = np.frombuffer(raw, dtype=dtype)
    if dtype.kind == "b" and not np.isin(np.frombuffer(raw, np.uint8), (0, 1)).all():
        raise TensorError(f"input '{name}': BOOL bytes must be 0 or 1")
    return values


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary part) of a request body; all JSON without the header length."""
    if header_length is None:
        return body, b""
    if not (header_length.isascii() and header_length.isdigit()):
        raise TensorError("Inference-Header-Content-Length must be a number")
    size = int(header_length)
    if size > len(body):
        raise TensorError(
            f"Inference-Header-Content-Length {size} is beyond the body's {len(body)} bytes"
        )
    return body[:size], body[size:]


def decode_inputs(request: Any, binary: bytes, text: bytes | None = None) -> list[Tensor]:
    """The request's ``inputs``, decoded and checked against their datatype and shape.

    ``text``: the JSON the request was parsed from; without a ``true`` or ``false`` in it no
    element is a boolean, and a float tensor's rows take the quicker path.
    """
    booleans = text is None or b"true" in text or b"false" in text
    if not isinstance(request, dict):
        raise TensorError("the request must be a JSON object")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise TensorError("'inputs' must be a non-empty list of tensors")
    tensors: list[Tensor] = []
    seen: set[str] = set()
    offset = 0
    for position, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise TensorError(f"inputs[{position}] must be an object with a 'name'")
        name = item["name"]
        if name in seen:
            raise TensorError(f"input '{name}' is given twice")
        seen.add(name)
        datatype = item.get("datatype")
        # isinstance first: an unhashable datatype ({} or []) made `in NUMERIC` a 500
        if not isinstance(datatype, str) or (datatype != BYTES and datatype not in NUMERIC):
            raise TensorError(f"input '{name}': unknown datatype {str(datatype)[:20]!r}")
        shape = _shape(name, item.get("shape"))
        size = math.prod(shape)
        parameters = item.get("parameters") or {}
        binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if binary_size is not None:
            if type(binary_size) is not int or not 0 <= binary_size <= len(binary) - offset:
                raise TensorError(
                    f"input '{name}': binary_data_size {binary_size!r:.20} is beyond the "
                    "request's binary data"
                )
            raw = binary[offset : offset + binary_size]
            offset += binary_size
            values = _from_binary(name, datatype, raw, size)
        elif "data" in item:
            values = _from_json(name, datatype, item["data"], size, booleans)
        else:
            raise TensorError(f"input '{name}' has neither data nor binary_data_size")
        tensors.append(Tensor(name, datatype, shape, values))
    if offset != len(binary):
        raise TensorError(f"{len(binary) - offset} bytes of binary data belong to no input")
    return tensors


def _encode_binary(datatype: str, values: Any) -> bytes:
    if datatype == BYTES:
        parts = []
        for text in values:
            data = text.encode("utf-8")
            parts += [struct.pack("<I", len(data)), data]
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=NUMERIC[datatype]).tobytes()


def encode_outputs(
    header: dict[str, Any],
    outputs: list[tuple[str, str, Any]],
    binary: set[str],
) -> tuple[dict[str, Any], bytes]:
    """The response's JSON header (``header`` plus ``outputs``) and its binary part.

    ``outputs``: (name, datatype, values of shape [n]); names in ``binary`` go as raw bytes.
    """
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, datatype, values in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(values)]}
        if name in binary:
            blob = _encode_binary(datatype, values)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = values.tolist() if isinstance(values, np.ndarray) else list(values)
        entries.append(entry)
    return {**header, "outputs": entries}, b"".join(blobs)
