"""Shared fixtures: one embedded broker per test session; each test uses topics of its own."""
import itertools
import os

import pytest

import iotstream

_counter = itertools.count()


@pytest.fixture(scope="session")
def broker():
    # Extra topics are created per test (new_topic), so the default five serve the pipelines.
    with iotstream.Broker() as b:
        yield b


@pytest.fixture
def new_topic(broker, request):
    """Creates and returns a fresh topic name (8 partitions unless asked otherwise)."""
    def make(partitions: int = 8) -> str:
        name = f"t-{request.node.name[:40]}-{next(_counter)}".replace("[", "-").replace("]", "")
        broker.create_topic(name, partitions)
        return name
    return make


@pytest.fixture
def plugin_dir():
    path = iotstream.default_plugin_dir()
    assert path and os.path.isdir(path), "IOTSTREAM_PLUGIN_DIR must point at the built plugins"
    return path
