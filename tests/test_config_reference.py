"""docs/configuration.md is generated from the config dataclasses and must match them."""

from __future__ import annotations

from tools import config_reference


def test_the_committed_configuration_reference_is_up_to_date():
    assert config_reference.TARGET.read_text() == config_reference.render(), (
        "docs/configuration.md is out of date; run python -m tools.config_reference"
    )


def test_the_reference_lists_each_backend_with_its_own_options():
    text = config_reference.render()
    for key in ("backend.mode", "backend.providers", "backend.device", "infer.input_size", "scenario.no_model"):
        assert f"`{key}`" in text
