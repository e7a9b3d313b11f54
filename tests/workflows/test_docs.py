"""docs/workflows.md stays true: every YAML example in it loads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from automate_core import definitions
from automate_core.models import Schedule, Workflow

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
BLOCKS = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)]
# whole files; the doc also shows fragments (a workflow's concurrency: key on its own)
EXAMPLES = [b for b in BLOCKS if set(b) <= {"sources", "workflows", "schedules"}]


@pytest.mark.django_db
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_every_yaml_example_loads(example: dict[str, Any]) -> None:
    data = example
    counts = definitions.load(data)
    assert counts["workflows"] == Workflow.objects.count() == len(data.get("workflows") or [])
    assert Schedule.objects.count() == len(data.get("schedules") or [])


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 2 and len(BLOCKS) > len(EXAMPLES)
