"""Turns catalog objects into the JSON shapes of the real API (field names as in the doc)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from tests.double.catalog import Catalog, FakeFile, FakeImage, FakeModel, FakeVersion, iso
from tests.double.faults import FaultBook

_BLURHASH = "U9FY]l~q00D%4nRjxuWB00M{%MWB~q%MIUof"  # a placeholder, not a file hash

JsonDict = dict[str, Any]


class Renderer:
    def __init__(self, catalog: Catalog, faults: FaultBook, base_url: str, storage_url: str):
        self.catalog = catalog
        self.faults = faults
        self.base_url = base_url
        self.storage_url = storage_url

    # -- public shapes ----------------------------------------------------------------------

    def model(self, model: FakeModel, primary_file_only: bool = False) -> JsonDict:
        """A `/models` item, which is also the whole body of `/models/{id}`."""
        out: JsonDict = {
            "id": model.id,
            "name": model.name,
            "description": model.description,
            "type": model.type,
            "poi": model.poi,
            "nsfw": model.nsfw,
            "nsfwLevel": 31 if model.nsfw else 1,
            "minor": False,
            "sfwOnly": False,
            "availability": "Public",
            "supportsGeneration": False,
            "allowNoCredit": True,
            "allowCommercialUse": "{Image,RentCivit}",
            "allowDerivatives": True,
            "allowDifferentLicense": True,
            "stats": {
                "downloadCount": model.download_count,
                "thumbsUpCount": model.thumbs_up,
                "thumbsDownCount": 0,
                "commentCount": model.comment_count,
                "tippedAmountCount": 0,
            },
            "creator": {"username": model.creator, "image": None},
            "tags": list(model.tags),
            "modelVersions": [
                self._list_version(model, v, primary_file_only) for v in model.published_versions
                if v.id not in self.faults.unpublished
            ],
        }
        mode = self.mode(model)
        if mode is not None:
            out["mode"] = mode
        return out

    def mode(self, model: FakeModel) -> str | None:
        """Section 1.5: Archived drops files and the download URL, TakenDown images too."""
        if model.id in self.faults.taken_down:
            return "TakenDown"
        return "Archived" if model.id in self.faults.archived else None

    def version(self, version: FakeVersion) -> JsonDict:
        """The full form of `/model-versions/{id}` and `/model-versions/by-hash/{hash}`."""
        model = self.catalog.model_of(version)
        mode = self.mode(model)
        archived = mode is not None
        nested_model: JsonDict = {
            "name": model.name,
            "type": model.type,
            "nsfw": model.nsfw,
            "poi": model.poi,
        }
        if mode is not None:
            nested_model["mode"] = mode
        out: JsonDict = {
            "id": version.id,
            "modelId": model.id,
            "name": version.name,
            "description": version.description,
            "baseModel": version.base_model,
            "baseModelType": version.base_model_type,
            "air": self._air(model, version),
            "status": "Published",
            **self._version_common(version),
            "createdAt": iso(version.published_at - dt.timedelta(hours=1)),
            "updatedAt": iso(version.published_at),
            "model": nested_model,
            "files": [] if archived else [self._file(version, f, True) for f in version.files],
            "images": [] if mode == "TakenDown" else [
                self._image(i, "width=450", with_id=False) for i in version.images],
        }
        if not archived:
            out["downloadUrl"] = self.download_url(version)
        return out

    def download_url(self, version: FakeVersion, f: FakeFile | None = None) -> str:
        url = f"{self.base_url}/api/download/models/{version.id}"
        if f is None or f.primary:
            return url
        return f"{url}?{urlencode(self._file_selectors(version, f))}"

    # -- pieces -----------------------------------------------------------------------------

    def _version_common(self, version: FakeVersion) -> JsonDict:
        deadline = self.faults.early_access.get(version.id)
        return {
            "availability": "EarlyAccess" if deadline else "Public",
            "nsfwLevel": version.nsfw_level,
            "publishedAt": iso(version.published_at),
            "uploadType": "Created",
            "usageControl": "Download",
            "trainedWords": list(version.trained_words),
            "trainingStatus": None,
            "trainingDetails": None,
            "earlyAccessEndsAt": deadline,
            "earlyAccessConfig": (
                {"timeframe": 7, "chargeForDownload": True, "downloadPrice": 500}
                if deadline
                else None
            ),
            "stats": {
                "downloadCount": version.download_count,
                "ratingCount": 0,
                "rating": 0,
                "thumbsUpCount": version.thumbs_up,
            },
        }

    def _list_version(self, model: FakeModel, version: FakeVersion, primary_only: bool) -> JsonDict:
        """The version form nested in `/models`: no `model`, `primary` true or absent."""
        mode = self.mode(model)
        archived = mode is not None
        files = [f for f in version.files if f.primary or not primary_only]
        out: JsonDict = {
            "id": version.id,
            "modelId": model.id,
            "name": version.name,
            "description": version.description,
            "baseModel": version.base_model,
            "baseModelType": version.base_model_type,
            **self._version_common(version),
            "supportsGeneration": False,
            "files": [] if archived else [self._file(version, f, False) for f in files],
            "images": [] if mode == "TakenDown" else [
                self._image(i, "original=true", with_id=True) for i in version.images],
        }
        if not archived:
            out["downloadUrl"] = self.download_url(version)
        return out

    def _file(self, version: FakeVersion, f: FakeFile, full_form: bool) -> JsonDict:
        out: JsonDict = {
            "id": f.id,
            "name": f.name,
            "sizeKB": f.size / 1024,
            "type": f.type,
        }
        if full_form or f.primary:
            out["primary"] = bool(f.primary)
        out.update(
            {
                "metadata": {"format": f.format, "size": f.size_label, "fp": f.fp},
                "pickleScanResult": f.pickle_scan,
                "pickleScanMessage": f.pickle_message,
                "virusScanResult": f.virus_scan,
                "scannedAt": iso(version.published_at - dt.timedelta(minutes=30)),
                "hashes": f.hashes.as_api_dict(),
                "downloadUrl": self.download_url(version, f),
            }
        )
        return out

    def _image(self, image: FakeImage, variant: str, with_id: bool) -> JsonDict:
        out: JsonDict = {"id": image.id} if with_id else {}
        out.update(
            {
                "url": self.storage_url + image.path(variant),
                "nsfwLevel": image.nsfw_level,
                "width": image.width,
                "height": image.height,
                "hash": _BLURHASH,
                "type": "image",
                "hasMeta": image.meta is not None,
            }
        )
        if not with_id:
            out["meta"] = image.meta
        return out

    def _file_selectors(self, version: FakeVersion, f: FakeFile) -> dict[str, str]:
        """`?type=&format=&size=&fp=` like the docs, or `?fileId=` when that is ambiguous."""
        selectors = {"type": f.type, "format": f.format}
        if f.size_label:
            selectors["size"] = f.size_label
        if f.fp:
            selectors["fp"] = f.fp
        if select_file(version, selectors) is not f:
            return {"fileId": str(f.id)}
        return selectors

    @staticmethod
    def _air(model: FakeModel, version: FakeVersion) -> str:
        ecosystem = {"SD 1.4": "sd1", "SD 1.5": "sd1", "SDXL 1.0": "sdxl", "Pony": "sdxl"}.get(
            version.base_model, "other"
        )
        return f"urn:air:{ecosystem}:{model.type.lower()}:civitai:{model.id}@{version.id}"


def select_file(version: FakeVersion, selectors: dict[str, str]) -> FakeFile | None:
    """The download endpoint's file choice: `fileId`, else metadata selectors, else primary."""
    if "fileId" in selectors:
        return next((f for f in version.files if str(f.id) == selectors["fileId"]), None)
    if not selectors:
        return version.primary_file
    fields = {
        "type": lambda f: f.type,
        "format": lambda f: f.format,
        "size": lambda f: f.size_label,
        "fp": lambda f: f.fp,
    }
    matches = [
        f
        for f in version.files
        if all(fields[key](f) == value for key, value in selectors.items() if key in fields)
    ]
    return matches[0] if matches else None
