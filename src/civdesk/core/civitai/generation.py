"""An image's generation parameters (``meta`` of a Civitai image), read as hostile input.

``meta`` is free-form: whatever the uploader's tool wrote (A1111, ComfyUI, Civitai's own
generator). Only the fields people copy are kept, each as plain text cut to a bound, and
anything of the wrong shape is dropped rather than failing the model it came with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

#: The longest prompt kept (characters); longer ones are cut with an ellipsis.
MAX_PROMPT = 8_000
#: The longest value of any other field.
MAX_VALUE = 200
ELLIPSIS = "…"


@dataclass(frozen=True)
class GenerationParams:
    """What made an image, as Civitai sends it; every field plain text, bounded."""

    prompt: str | None = None
    negative_prompt: str | None = None
    sampler: str | None = None
    steps: str | None = None
    cfg_scale: str | None = None
    seed: str | None = None
    size: str | None = None
    model: str | None = None

    @classmethod
    def from_meta(cls, meta: Any) -> GenerationParams | None:
        """The parameters in ``meta``; None when it is null, not an object or names none."""
        if not isinstance(meta, Mapping):
            return None
        params = cls(
            prompt=_text(meta.get("prompt"), MAX_PROMPT),
            negative_prompt=_text(meta.get("negativePrompt"), MAX_PROMPT),
            sampler=_text(meta.get("sampler")),
            steps=_text(meta.get("steps")),
            cfg_scale=_text(meta.get("cfgScale")),
            seed=_text(meta.get("seed")),
            size=_text(meta.get("Size")),
            model=_text(meta.get("Model")),
        )
        return params if any(getattr(params, f.name) for f in fields(params)) else None

    def labelled(self) -> list[tuple[str, str]]:
        """(label, value) of each field present, in the order a viewer shows them."""
        pairs = [("Prompt", self.prompt), ("Negative prompt", self.negative_prompt),
                 *self._settings()]
        return [(label, value) for label, value in pairs if value]

    def _settings(self) -> list[tuple[str, str | None]]:
        return [("Steps", self.steps), ("Sampler", self.sampler), ("CFG scale", self.cfg_scale),
                ("Seed", self.seed), ("Size", self.size), ("Model", self.model)]

    def a1111_text(self) -> str:
        """The A1111 "parameters" text (what its PNG Info reads and pastes back)::

            a fox made of folded paper
            Negative prompt: blurry
            Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x768, Model: x
        """
        lines = [self.prompt or ""]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        settings = ", ".join(f"{label}: {value}" for label, value in self._settings() if value)
        if settings:
            lines.append(settings)
        return "\n".join(lines)


def _text(value: Any, limit: int = MAX_VALUE) -> str | None:
    """``value`` as one bounded line of text (numbers written out); None for other shapes."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    if limit == MAX_VALUE:
        text = " ".join(text.split())  # a setting is one line
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text or None
