"""The model names the emulator accepts, like the real API, which refuses a name it lacks."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

#: In ``EmulatorConfig.models``, accepts every model name (the emulator's old behaviour).
ANY_MODEL = "*"

# Every API name of a model that Mistral's model catalog (the source of docs.mistral.ai's
# models pages, as of 2026-08-21) does not mark Retired: GA, public preview and deprecated
# models (a deprecated model still answers until it is retired), the -latest aliases and the
# dated versions, plus `mistral-moderation-latest`, the alias the moderation guides use.
# Grouped by family; a new model needs a line here (or `models` in the config).
DEFAULT_MODELS: tuple[str, ...] = (
    # Mistral Large / Medium / Small
    "mistral-large-latest",
    "mistral-large-2512",
    "mistral-large-2411",
    "mistral-medium-latest",
    "mistral-medium-3-5",
    "mistral-medium-3",
    "mistral-medium-2508",
    "mistral-medium-2505",
    "mistral-small-latest",
    "mistral-small-2603",
    "mistral-small-2506",
    "labs-mistral-small-creative",
    "open-mistral-nemo",
    "open-mistral-nemo-2407",
    # Ministral
    "ministral-14b-latest",
    "ministral-14b-2512",
    "ministral-8b-latest",
    "ministral-8b-2512",
    "ministral-8b-2410",
    "ministral-3b-latest",
    "ministral-3b-2512",
    "ministral-3b-2410",
    # Reasoning (Magistral)
    "magistral-medium-latest",
    "magistral-medium-2509",
    "magistral-small-latest",
    "magistral-small-2509",
    # Code (Codestral, Devstral, Leanstral)
    "codestral-latest",
    "codestral-2508",
    "devstral-latest",
    "devstral-medium-latest",
    "devstral-2512",
    "devstral-medium-2507",
    "devstral-small-latest",
    "labs-devstral-small-2512",
    "devstral-small-2507",
    "labs-leanstral-1-5",
    # Vision (Pixtral)
    "pixtral-large-latest",
    "pixtral-large-2411",
    "pixtral-12b-2409",
    # Embeddings
    "mistral-embed",
    "mistral-embed-2312",
    "codestral-embed",
    "codestral-embed-2505",
    # Moderation
    "mistral-moderation-latest",
    "mistral-moderation-2603",
    "mistral-moderation-2411",
    # OCR
    "mistral-ocr-latest",
    "mistral-ocr-4",
    "mistral-ocr-4-1",
    "mistral-ocr-4-0",
    "mistral-ocr-2512",
    "mistral-ocr-2505",
    "mistral-ocr-2503",
    # Audio (Voxtral)
    "voxtral-mini-latest",
    "voxtral-mini-2602",
    "voxtral-mini-2507",
    "voxtral-small-latest",
    "voxtral-small-2507",
    "voxtral-mini-transcribe-realtime-latest",
    "voxtral-mini-transcribe-realtime-2602",
    "voxtral-mini-tts-latest",
    "voxtral-mini-tts-2603",
    # Partner models served by the API
    "zai-glm-5-2",
)


def accepted_models(models: Iterable[str]) -> frozenset[str] | None:
    """The names a config accepts, or None when it accepts any name (it lists ``"*"``)."""
    names = frozenset(models)
    return None if ANY_MODEL in names else names


def unknown_model_message(name: str, known: Collection[str]) -> str:
    """What the API says about a model it lacks, with the closest known name as a hint.

    The real API answers ``Invalid model: <name>``; the emulator adds that the model is
    unknown and, for a likely typo, the name that was probably meant.
    """
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    hint = f"did you mean {close[0]}?" if close else "see the emulator's models setting"
    return f"Invalid model: {name} (unknown model; {hint})"


__all__ = ["ANY_MODEL", "DEFAULT_MODELS", "accepted_models", "unknown_model_message"]
