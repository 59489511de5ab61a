"""The OpenAPI 3.0 document of the service, built from the request field specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.schemas import FieldSpec, required_fields, sample_transaction
from fraud.data import schema


def _error_schemas() -> dict[str, Any]:
    field_error = {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    }
    return {
        "FieldError": field_error,
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            },
        },
    }


def _prediction_schema() -> dict[str, Any]:
    reason = {
        "type": "object",
        "properties": {
            "feature": {"type": "string"},
            "value": {"type": "number", "nullable": True},
            "contribution": {"type": "number"},
        },
    }
    return {
        "type": "object",
        "required": [
            "fraud_probability",
            "is_fraud",
            "risk_level",
            "prediction_id",
            "timestamp",
            "model_version",
            "reasons",
            "warnings",
            "history_source",
        ],
        "properties": {
            "fraud_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "is_fraud": {"type": "boolean"},
            "risk_level": {"type": "string", "enum": ["low", "medium", "high"]},
            "prediction_id": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
            "model_version": {"type": "string"},
            "processing_time_ms": {"type": "number"},
            "transaction_id": {"type": "string"},
            "reasons": {"type": "array", "items": reason},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "history_source": {
                "type": "string",
                "enum": ["store", "request", "none"],
                "description": "Where the history came from: the service's online store (no "
                "history field sent), the request's history fields (any sent), or none (no "
                "store configured: scored as a first transaction)",
            },
            "history": {
                "type": "object",
                "additionalProperties": {"type": "number", "nullable": True},
                "description": "The history the store computed (only with FEATURE_STORE_DEBUG=1)",
            },
        },
    }


def _v2_paths(ok: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol (KServe V2) routes (``app.v2``), errors as ``{"error"}``."""
    v2_error = {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                }
            }
        }
    }

    def error(description: str) -> dict[str, Any]:
        return {"description": description, **v2_error}

    name = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["fraud-detector"]},
    }
    tensors = {
        "type": "object",
        "required": ["inputs"],
        "description": "V2 inference request: raw transaction fields as named [n] tensors "
        "(BYTES text, FP64/INT64 numbers, BOOL/INT64 flags), or one FP32 'features' tensor "
        "[n, n_features]; JSON data, or binary with Inference-Header-Content-Length",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "datatype", "shape"],
                    "properties": {
                        "name": {"type": "string"},
                        "datatype": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "data": {"type": "array"},
                        "parameters": {"type": "object"},
                    },
                },
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
            "parameters": {"type": "object"},
        },
    }
    return {
        "/v2/health/live": {"get": {"summary": "V2 liveness", "responses": {"200": ok}}},
        "/v2/health/ready": {
            "get": {
                "summary": "V2 readiness (as /ready)",
                "responses": {"200": ok, "503": error("Not ready (feature store, draining)")},
            }
        },
        "/v2/models/{model_name}": {
            "get": {
                "summary": "V2 model metadata: inputs, outputs, version",
                "parameters": [name],
                "responses": {"200": ok, "404": error("Unknown model")},
            }
        },
        "/v2/models/{model_name}/infer": {
            "post": {
                "summary": "V2 inference: fraud_probability, is_fraud, risk_level per row",
                "parameters": [name],
                "security": [{}, {"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": tensors}},
                },
                "responses": {
                    "200": ok,
                    "400": error("A bad input; the message names it"),
                    "401": error("Missing or wrong API key (when API_KEYS is set)"),
                    "404": error("Unknown model or version"),
                    "413": error("Body or rows too many"),
                    "503": error("The feature store cannot be used"),
                },
            }
        },
    }


def openapi_document(
    fields: Mapping[str, FieldSpec], version: str, max_batch: int
) -> dict[str, Any]:
    """OpenAPI 3.0 document of the service, built from ``fields``."""
    properties = {name: spec.openapi() for name, spec in fields.items()}
    for name in (schema.HOUR, schema.DAY):  # null is absent, as for every field...
        properties[name]["nullable"] = True
    transaction = {
        "type": "object",
        "required": required_fields(fields),
        "anyOf": [  # ... but hour and day, or a timestamp, must be there and not null
            {
                "required": [schema.HOUR, schema.DAY],
                "properties": {schema.HOUR: {"type": "integer"}, schema.DAY: {"type": "integer"}},
            },
            {"required": [schema.TIMESTAMP], "properties": {schema.TIMESTAMP: {"type": "string"}}},
        ],
        "properties": properties,
        "additionalProperties": True,
        "example": sample_transaction(fields),
    }
    batch = {
        "type": "object",
        "required": ["transactions"],
        "properties": {
            "transactions": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_batch,
                # any value: an invalid item is reported at its index in a 200, not a 422
                "items": {"description": "a Transaction (an invalid one: errors at its index)"},
            }
        },
    }

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    def body(ref: str) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }

    client_errors = {
        "400": error("Malformed JSON"),
        "413": error("Body or batch too large"),
        "415": error("Content type is not application/json"),
        "422": error("Validation failed; details name each bad field"),
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Fraud scoring service", "version": version},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Score one transaction",
                    "requestBody": body("Transaction"),
                    "responses": {
                        "200": {
                            "description": "Prediction",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Prediction"}
                                }
                            },
                        },
                        **client_errors,
                    },
                }
            },
            "/predict/batch": {
                "post": {
                    "summary": "Score up to max_batch transactions, results in input order",
                    "requestBody": body("Batch"),
                    "responses": {"200": ok, **client_errors},
                }
            },
            "/health": {"get": {"summary": "Liveness", "responses": {"200": ok}}},
            "/ready": {
                "get": {
                    "summary": "Readiness: model loaded and verified",
                    "responses": {"200": ok},
                }
            },
            "/model/info": {"get": {"summary": "Model manifest facts", "responses": {"200": ok}}},
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format)",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/monitoring/drift": {
                "get": {
                    "summary": "Drift report over the most recent predictions of all workers",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": ok,
                        "401": error("Missing or wrong bearer token (MONITORING_TOKEN)"),
                        "404": error("Drift monitoring is off: MONITORING_TOKEN is not set"),
                    },
                }
            },
            "/monitoring/performance": {
                "get": {
                    "summary": "Realized performance (audit log joined with feedback labels) "
                    "and CBPE-estimated performance over the latest window of predictions",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "genuine_after_s",
                            "in": "query",
                            "required": False,
                            "description": "unlabelled predictions scored longer ago than this "
                            "count as genuine (default: the model's label delay; none: never)",
                            "schema": {
                                "anyOf": [
                                    {"type": "number", "minimum": 0},
                                    {"type": "string", "enum": ["none"]},
                                ]
                            },
                        }
                    ],
                    "responses": {
                        "200": ok,
                        "400": error("genuine_after_s is not a number >= 0 or none"),
                        "401": error("Missing or wrong bearer token (MONITORING_TOKEN)"),
                        "404": error("Monitoring is off: MONITORING_TOKEN is not set"),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "Labels for scored transactions: one, or a batch as "
                    '{"labels": [...]}; the last label (by labelled_at) wins',
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Label"},
                                        {
                                            "type": "object",
                                            "required": ["labels"],
                                            "properties": {
                                                "labels": {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "maxItems": max_batch,
                                                    # as a batch's: errors at the index
                                                    "items": {"description": "a Label"},
                                                }
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": ok,
                        "400": error("Malformed JSON"),
                        "401": error("Missing or wrong bearer token (FEEDBACK_TOKEN)"),
                        "404": error("Feedback is off, or (one label) an unknown transaction_id"),
                        "413": error("Body or batch too large"),
                        "415": error("Content-Type is not application/json"),
                        "422": error("Invalid label"),
                        "503": error("The online feature store cannot be used"),
                    },
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok}}},
            "/docs": {
                "get": {
                    "summary": "Interactive documentation of this document (Swagger UI)",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/sample-transaction": {
                "get": {"summary": "A valid example request", "responses": {"200": ok}}
            },
            **_v2_paths(ok),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Transaction": transaction,
                "Batch": batch,
                "Prediction": _prediction_schema(),
                "Label": {
                    "type": "object",
                    "required": ["transaction_id", "is_fraud"],
                    "additionalProperties": False,
                    "properties": {
                        "transaction_id": {"type": "string", "minLength": 1, "maxLength": 128},
                        "is_fraud": {
                            "oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]
                        },
                        # null (or absent): the time the label is received
                        "labelled_at": {"type": "string", "format": "date-time", "nullable": True},
                    },
                },
                **_error_schemas(),
            },
        },
    }
