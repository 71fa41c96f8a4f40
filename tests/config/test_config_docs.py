"""Every config key in the schema is documented in docs/config.md."""

from pathlib import Path

import attrs
import pytest

from audio_core.config.merge import attrs_class as _attrs_class
from audio_core.config.schema import RunConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def schema_keys(cls: type, prefix: str = ""):
    import typing

    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        key = f"{prefix}{field.name}"
        inner = _attrs_class(hints[field.name])
        if inner is None or "kind" in field.metadata:
            yield key
        else:
            yield from schema_keys(inner, key + ".")


@pytest.mark.parametrize("key", list(schema_keys(RunConfig)))
def test_key_is_documented(key):
    assert f"`{key}`" in DOC.read_text(), f"{key} is missing from docs/config.md"
