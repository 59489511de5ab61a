"""Request schema: one table of field specs drives validation (``app.validation``) and the API
document (``app.openapi``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fraud.data import schema
from fraud.features.spec import is_count_column

#: Largest amount accepted (a guard against absurd values, not a business rule).
MAX_AMOUNT = 1e9
#: Upper bound for history counts, sums and durations.
MAX_HISTORY = 1e12
MAX_STRING = 128
MAX_TIMESTAMP = 64
#: At most this many unknown field names are listed in a warning.
MAX_LISTED_UNKNOWN = 20

#: What a STRING field's rule accepts, as a JSON Schema pattern: not only whitespace, and no
#: control character (app.validation's _string_rule).
STRING_PATTERN = r"^(?!\s*$)[^\x00-\x1f]*$"

NUMBER = "number"
INTEGER = "integer"
STRING = "string"
FLAG = "flag"
TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldSpec:
    """One request field: its type, bounds and documentation."""

    kind: str
    description: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    max_length: int = MAX_STRING
    example: Any = None
    history: str = ""  # the entity (user, merchant, device) of a history field the model reads

    def openapi(self) -> dict[str, Any]:
        """This field as an OpenAPI 3.0 schema object."""
        out: dict[str, Any]
        if self.kind == FLAG:
            out = {"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
        elif self.kind == TIMESTAMP:
            out = {"type": "string", "format": "date-time", "maxLength": self.max_length}
        elif self.kind == STRING:  # the validator's rule: not blank, no control character
            out = {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_length,
                "pattern": STRING_PATTERN,
            }
        else:
            out = {"type": self.kind}
            if self.minimum is not None:
                out["minimum"] = self.minimum
                if self.exclusive_minimum:
                    out["exclusiveMinimum"] = True
            if self.maximum is not None:
                out["maximum"] = self.maximum
        out["description"] = self.description
        if self.example is not None:
            out["example"] = self.example
        if not self.required:
            out["nullable"] = True
        return out


#: Examples of a returning user's history (the sample request carries all history or none).
_HISTORY_EXAMPLES = {
    "user_transaction_count": 42,
    "user_avg_amount": 80.0,
    "user_std_amount": 35.0,
    "seconds_since_last_transaction": 1800.0,  # consistent with 2 transactions in the last hour
}
#: History column kind (the part after the entity prefix) -> how to describe it.
_WINDOW_KINDS = {
    "txn_count": "transactions of this {entity} in the {window} before this one",
    "amount_sum": "amount of this {entity}'s transactions in the {window} before this one",
    "labelled_count": "transactions of this {entity} in the {window} before the label delay "
    "(their labels are known)",
    "fraud_count": "of those labelled transactions, how many were fraud",
}


def _history_spec(name: str, entity: str) -> FieldSpec:
    """The spec of a history field of ``entity``, from its name."""
    if name.startswith("is_new_"):
        what = name.removeprefix("is_new_").replace("_", " ")
        return FieldSpec(
            FLAG, f"1 when this user has not used this {what} before", example=0, history=entity
        )
    description = f"{entity.capitalize()} history: {name}"
    for kind, text in _WINDOW_KINDS.items():
        head, sep, window = name.removeprefix(f"{entity}_").rpartition("_")
        if sep and head == kind:
            description += " (" + text.format(entity=entity, window=window) + ")"
            break
    if is_count_column(name):
        example = 0 if "_fraud_count_" in name else _HISTORY_EXAMPLES.get(name, 2)
        return FieldSpec(
            INTEGER, description, minimum=0, maximum=MAX_HISTORY, example=example, history=entity
        )
    return FieldSpec(
        NUMBER,
        description,
        minimum=0,
        maximum=MAX_HISTORY,
        example=_HISTORY_EXAMPLES.get(name, 160.0),
        history=entity,
    )


def transaction_fields(
    history: Mapping[str, Iterable[str]], categorical: Iterable[str] = schema.CATEGORICAL_COLUMNS
) -> dict[str, FieldSpec]:
    """Field specs of one transaction: the categorical fields the model was trained with (a
    model trained without ``device_type`` does not ask for it) and the history fields of each
    entity (``history``: entity -> its history columns)."""
    fields: dict[str, FieldSpec] = {
        schema.AMOUNT: FieldSpec(
            NUMBER,
            "Transaction amount",
            required=True,
            minimum=0,
            exclusive_minimum=True,
            maximum=MAX_AMOUNT,
            example=125.5,
        ),
        "merchant_category": FieldSpec(
            STRING, "Merchant category", required=True, example="online_retail"
        ),
        "transaction_type": FieldSpec(STRING, "Transaction type", required=True, example="online"),
        "location": FieldSpec(STRING, "Location (city)", required=True, example="Chicago"),
        "device_type": FieldSpec(STRING, "Device type", required=True, example="mobile"),
        schema.HOUR: FieldSpec(
            INTEGER,
            "Hour of day 0-23 (optional when timestamp is given, which overrides it)",
            required=True,
            minimum=0,
            maximum=23,
            example=14,
        ),
        schema.DAY: FieldSpec(
            INTEGER,
            "Day of week, Monday=0 ... Sunday=6 (optional when timestamp is given)",
            required=True,
            minimum=0,
            maximum=6,
            example=2,
        ),
        "user_id": FieldSpec(
            STRING,
            "The card / account: the key of its history (required when the service computes "
            "the history: no history field sent)",
            example="user_000123",
        ),
        "transaction_id": FieldSpec(
            STRING,
            "Client's transaction id, echoed; required when the service computes the history "
            "(a re-sent id is not counted twice)",
            example="txn-1",
        ),
        schema.DEVICE_ID: FieldSpec(
            STRING,
            "Client's device id (required when the store computes history)",
            example="dev-42",
        ),
        schema.MERCHANT_ID: FieldSpec(
            STRING,
            "Client's merchant / terminal id (required when the store computes history)",
            example="m-7",
        ),
        schema.TIMESTAMP: FieldSpec(
            TIMESTAMP,
            "ISO 8601 time; hour_of_day/day_of_week are derived from it in UTC; required when "
            "the service computes the history, which it does as of this time",
            max_length=MAX_TIMESTAMP,
            example="2026-03-04T14:05:00Z",
        ),
        "user_transaction_frequency": FieldSpec(
            NUMBER, "Accepted for compatibility; not used by the model", minimum=0
        ),
    }
    for name in set(schema.CATEGORICAL_COLUMNS) - set(categorical):
        del fields[name]
    for entity, names in history.items():
        for name in names:
            fields[name] = _history_spec(name, entity)
    return fields


def required_fields(fields: Mapping[str, FieldSpec]) -> list[str]:
    """Fields every request must carry (hour/day may instead come from a timestamp)."""
    return [
        name
        for name, spec in fields.items()
        if spec.required and name not in (schema.HOUR, schema.DAY)
    ]


def sample_transaction(
    fields: Mapping[str, FieldSpec], raw_at: str | None = None
) -> dict[str, Any]:
    """A valid example request body built from the field examples: with every history field
    (stateless), or with ``raw_at`` the raw transaction at that time, whose history the
    service's store computes (no history, no hour/day: they come from the timestamp)."""
    sample = {name: spec.example for name, spec in fields.items() if spec.example is not None}
    if raw_at is None:
        sample.pop(schema.TIMESTAMP, None)
        return sample
    kept = {
        name: value
        for name, value in sample.items()
        if not fields[name].history and name not in (schema.HOUR, schema.DAY)
    }
    return kept | {schema.TIMESTAMP: raw_at}
