"""The contract's slow cases join the ``slow`` lane."""

from __future__ import annotations

import pytest

from esctl_lib.testing import EventStoreContract


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if getattr(item, "originalname", item.name) in EventStoreContract.slow_cases:
            item.add_marker(pytest.mark.slow)
