"""A small realistic catalog for tests that just need "some models on Civitai"."""

from __future__ import annotations

from dataclasses import dataclass

from tests.double.catalog import FakeFile, FakeModel, FakeVersion
from tests.double.server import CivitaiDouble


@dataclass
class SampleCatalog:
    double: CivitaiDouble
    lora: FakeModel  # LORA with two versions: lora_v1 is outdated, lora_v2 the update
    lora_v1: FakeVersion
    lora_v2: FakeVersion
    checkpoint: FakeModel  # Checkpoint whose version also has a non-primary VAE file
    checkpoint_v1: FakeVersion
    embedding: FakeModel  # TextualInversion, file named after its trigger word
    embedding_v1: FakeVersion
    vae: FakeModel
    vae_v1: FakeVersion

    @property
    def models(self) -> list[FakeModel]:
        return [self.lora, self.checkpoint, self.embedding, self.vae]

    @property
    def versions(self) -> list[FakeVersion]:
        return [self.lora_v1, self.lora_v2, self.checkpoint_v1, self.embedding_v1, self.vae_v1]

    @property
    def files(self) -> list[FakeFile]:
        return [f for v in self.versions for f in v.files]


def build_sample_catalog(d: CivitaiDouble) -> SampleCatalog:
    lora = d.add_model(
        "Paperfold Style",
        "LORA",
        tags=["style", "origami", "paper"],
        creator="foldworks",
        description="<p>Folded-paper look.</p>",
        download_count=4821,
        thumbs_up=612,
    )
    lora_v1 = d.add_version(
        lora, "v1.0", "SD 1.5", ["paperfold style"], published_at="2024-08-02T15:20:44.880Z"
    )
    lora_v2 = d.add_version(
        lora,
        "v2.0",
        "SD 1.5",
        ["paperfold style", "origami"],
        images=[d.image("png"), d.image("webp", nsfw_level=2)],
        published_at="2025-01-10T09:00:00.000Z",
        description="<p>Retrained on 80 images.</p>",
    )
    # One image with the parameters people copy, one without any (``meta`` null).
    lora_v2.images[0].meta = {
        "prompt": "paperfold style, a fox made of folded paper, studio light",
        "negativePrompt": "blurry, lowres", "seed": 1234567890, "steps": 30,
        "sampler": "DPM++ 2M Karras", "cfgScale": 6, "Size": "832x1216",
        "Model": "harborLight_v21", "clipSkip": 2,
    }
    lora_v2.images[1].meta = None
    checkpoint = d.add_model(
        "Harbor Light",
        "Checkpoint",
        tags=["base model", "photorealistic"],
        creator="harborworks",
        download_count=98231,
        thumbs_up=7410,
    )
    checkpoint_v1 = d.add_version(
        checkpoint,
        "v2.1",
        "SDXL 1.0",
        files=[
            d.file(size=48 * 1024, size_label="pruned"),
            d.file(type="VAE", fp=None, name="sdxl_vae_fixed.safetensors"),
        ],
        images=[d.image("jpeg")],
        published_at="2025-03-09T10:00:00.000Z",
    )
    embedding = d.add_model(
        "Bad Hands Negative",
        "TextualInversion",
        tags=["negative", "hands"],
        creator="foldworks",
        download_count=1200,
        thumbs_up=90,
    )
    embedding_v1 = d.add_version(
        embedding, "v1", "SD 1.5", ["badhands"], published_at="2024-05-01T08:00:00.000Z"
    )
    vae = d.add_model("Clear VAE", "VAE", tags=["vae"], creator="harborworks", thumbs_up=40)
    vae_v1 = d.add_version(
        vae,
        "v1.0",
        "SD 1.5",
        files=[d.file(type="VAE", fp="fp32")],
        published_at="2023-11-20T12:00:00.000Z",
    )
    return SampleCatalog(
        d, lora, lora_v1, lora_v2, checkpoint, checkpoint_v1, embedding, embedding_v1, vae, vae_v1
    )
