"""The virtualenvs end-to-end tests run the exchange client from, one per supported nbgrader line
(built by tests/clients.py). A test takes a name from `ENVIRONMENTS` as its parameter and asks
`programs` for the folder of that environment's programs (python, nbgrader, jupyter)."""

from __future__ import annotations

from pathlib import Path

import pytest

import clients  # tests/ is on the path (tests/conftest.py)

ENVIRONMENTS = [pytest.param(environment.name, id=environment.name) for environment in clients.ENVIRONMENTS]


def programs(name: str) -> Path:
    """The bin folder of the environment called `name`, or skip saying why it cannot be used."""
    try:
        return clients.bin_folder(clients.environment(name))
    except clients.ClientUnavailable as reason:
        print(f'\nSKIPPED: {reason}')
        pytest.skip(str(reason))
