"""A local, real-HTTP test double of the Civitai API (see server.py for the entry point)."""

from tests.double.catalog import FakeFile, FakeImage, FakeModel, FakeVersion
from tests.double.content import make_safetensors
from tests.double.sample import SampleCatalog, build_sample_catalog
from tests.double.server import CivitaiDouble, RecordedRequest

__all__ = [
    "CivitaiDouble",
    "FakeFile",
    "FakeImage",
    "FakeModel",
    "FakeVersion",
    "RecordedRequest",
    "SampleCatalog",
    "build_sample_catalog",
    "make_safetensors",
]
