"""The base every spec block derives from: unknown keys are errors, values are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # A field's docstring is its description: in the JSON Schema and the reference (models/README.md).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
