"""The JSON Schema of the workflow file format (``automate schema``), for editors to validate
and complete files as they are written.

It is built from what the loader checks: the key sets of ``definitions`` (sources, workflows,
triggers, retries, steps, schedules) and each flow construct's own ``schema``, which is also the
set of keys its ``normalize`` accepts. A key the loader takes is a key the schema has (a test
checks the two never drift apart). The loader stays the authority on what the schema cannot say
(templates that compile, connectors that exist, references to steps, call cycles).
"""

from __future__ import annotations

from typing import Any

from automate_core import definitions as d
from automate_core.execution import constructs, grouping
from automate_core.execution.controls.load import SCHEMA as ADMISSION_SCHEMA

SCHEMA_ID = "https://django-automate.example/schemas/workflow-file.json"

STRING = {"type": "string"}
NUMBER = {"type": "number", "minimum": 0}
CONDITION = {
    "type": "string",
    "description": "a sandboxed Jinja2 expression, e.g. event.payload.amount > 100",
}

#: The value of each key the loader accepts (the key sets themselves come from ``definitions``).
TYPES: dict[str, dict[str, Any]] = {
    "source": {
        "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "name": STRING,
        "scheme": {"enum": ["hmac_sha256", "standard_webhooks", "stripe", "github", "slack", "shopify",
                            "hmac", "token", "none"]},
        "secret_ref": {"type": "string", "description": "backend:NAME[, backend:OLD] (rotation)"},
        "config": {"type": "object"},
        "enabled": {"type": "boolean"},
    },
    "workflow": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
        "description": STRING,
        "enabled": {"type": "boolean"},
        "trigger": {"$ref": "#/$defs/trigger"},
        "max_attempts": {"type": "integer", "minimum": 1},
        "retry": {"$ref": "#/$defs/workflow_retry"},
        "concurrency": {"$ref": "#/$defs/concurrency"},
        "debounce": {"$ref": "#/$defs/debounce"},
        "batch": {"$ref": "#/$defs/batch"},
        "secrets": {"type": "array", "items": STRING},
        "steps": {"$ref": "#/$defs/steps"},
        **ADMISSION_SCHEMA,  # throttle, rate_limit, singleton, queue, priority, fairness
    },
    "trigger": {"source": STRING, "event_type": STRING, "condition": CONDITION},
    "workflow_retry": {"max_attempts": {"type": "integer", "minimum": 1}, "base_seconds": NUMBER,
                       "max_seconds": NUMBER},
    "concurrency": {"limit": {"type": "integer", "minimum": 1}, "key": STRING},
    **grouping.SCHEMA,
    "action": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
        "connector": STRING,
        "action": STRING,
        "params": {"description": "JSON-like values; strings are Jinja2 templates"},
        "condition": CONDITION,
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "retry": {"$ref": "#/$defs/step_retry"},
        "continue_on_error": {"type": "boolean"},
    },
    "step_retry": {"max_attempts": {"type": "integer", "minimum": 1}, "backoff_seconds": NUMBER},
    "schedule": {"name": STRING, "cron": {"type": "string", "description": "five fields, minute first"},
                 "timezone": STRING, "source": STRING, "event_type": STRING, "payload": {},
                 "enabled": {"type": "boolean"}},
}  # fmt: skip

#: The loader's key set of each object above.
KEY_SETS: dict[str, set[str]] = {
    "source": d._SOURCE_KEYS,
    "workflow": d._WORKFLOW_KEYS,
    "trigger": d._TRIGGER_KEYS,
    "workflow_retry": d._WORKFLOW_RETRY_KEYS,
    "concurrency": d._CONCURRENCY_KEYS,
    "debounce": grouping.DEBOUNCE_KEYS,
    "batch": grouping.BATCH_KEYS,
    "action": d._STEP_KEYS,
    "step_retry": d._STEP_RETRY_KEYS,
    "schedule": d._SCHEDULE_KEYS,
}
REQUIRED = {"source": ["slug"], "workflow": ["name", "steps"], "action": ["name", "connector", "action"],
            "schedule": ["name", "cron"], **grouping.REQUIRED}  # fmt: skip


def _object(name: str, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    keys = sorted(KEY_SETS[name] - set(drop))
    return {
        "type": "object",
        "properties": {k: TYPES[name][k] for k in keys},
        "required": [k for k in REQUIRED.get(name, []) if k not in drop],
        "additionalProperties": False,
    }


def _construct_step(key: str, *, named: bool) -> dict[str, Any]:
    construct = constructs.get(key)
    common = {"condition": CONDITION, "continue_on_error": {"type": "boolean"}}
    props: dict[str, Any] = {key: construct.schema, **common}
    props.update(getattr(construct, "extra_schema", {}))
    if named:
        props["name"] = TYPES["action"]["name"]
    return {
        "type": "object",
        "properties": props,
        "required": [key, "name"] if named else [key],
        "additionalProperties": False,
    }


def schema() -> dict[str, Any]:
    """The whole file's schema (JSON Schema 2020-12)."""
    actions_only = [_object("action", drop=("name",))]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Django Automate definitions file (automate load)",
        "type": "object",
        "properties": {
            "sources": {"type": "array", "items": {"$ref": "#/$defs/source"}},
            "workflows": {"type": "array", "items": {"$ref": "#/$defs/workflow"}},
            "schedules": {"type": "array", "items": {"$ref": "#/$defs/schedule"}},
        },
        "additionalProperties": False,
        "$defs": {
            **{name: _object(name) for name in KEY_SETS if name != "action"},
            "step": {
                "oneOf": [_object("action")] + [_construct_step(k, named=True) for k in constructs.CONSTRUCTS]
            },
            # a construct's inner step (for_each's step, parallel's branches, approval's notify):
            # named by the construct; only actions, as a run parks only at the top or in a case
            "inner_step": {"oneOf": actions_only},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "minItems": 1},
        },
    }
