"""The whole vramplan exception tree, so the CLI and the API translate every error in one place.

    VramplanError                 base: every error we raise on purpose
    ├── InputError                the user gave something wrong (bad number, unknown name, bad flag)
    │   ├── UnknownModelError     a model name that is neither a path, a catalogue entry nor on the Hub
    │   ├── UnknownGPUError       a GPU name the catalogue does not know
    │   ├── UnknownDtypeError     a dtype / quantization / KV-cache dtype we do not know
    │   ├── ConfigError           a config.json that is malformed, truncated or describes no model
    │   ├── FileFormatError       a safetensors / GGUF / log file that is corrupt, truncated or hostile
    │   └── PlanNotFoundError     no saved plan has this id (never saved, or deleted)
    ├── UnsupportedModelError     an architecture the parameter counter does not understand
    ├── HubError                  the Hugging Face Hub could not give us a config (offline, gated, 404)
    ├── StoreUnavailableError     the plans database cannot be reached or written (retry later)
    ├── MissingExtraError         an optional dependency is not installed (names its pip extra)
    └── DoesNotFitError           a plan or a configuration that cannot run (carries the fixes)

Each message says what was wrong and how to fix it. Interfaces print ``str(error)``; they never show a
traceback for these classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vramplan.scenario import Fix


class VramplanError(Exception):
    """Base of every error vramplan raises on purpose."""


class InputError(VramplanError, ValueError):
    """The user gave an input we cannot use; the message names it and the fix."""


class UnknownModelError(InputError):
    """A model reference that resolves to nothing."""


class UnknownGPUError(InputError):
    """A GPU name that is not in the catalogue."""


class UnknownDtypeError(InputError):
    """A dtype, quantization scheme or KV-cache dtype we do not know."""


class ConfigError(InputError):
    """A config.json that cannot describe a model (malformed, truncated, missing fields)."""


class UnsupportedModelError(VramplanError):
    """An architecture whose parameters we cannot count exactly; we refuse rather than guess."""


class FileFormatError(InputError):
    """A weights file or log that is corrupt, truncated, hostile or of the wrong kind."""


class HubError(VramplanError):
    """The Hugging Face Hub could not provide a config."""


class PlanNotFoundError(InputError):
    """No saved plan has this id (never saved, or deleted)."""


class StoreUnavailableError(VramplanError):
    """The plans database cannot be reached or written; the API answers 503 and retries later."""


class DoesNotFitError(VramplanError):
    """A configuration that cannot run.

    ``fixes`` are changes that would make it run (``scenario.Fix`` data: a field, a value, why; each
    edge renders them as its own flags or JSON); ``reasons`` say why each option tried was rejected.
    """

    def __init__(
        self, message: str, fixes: Sequence[Fix] = (), reasons: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.fixes = list(fixes)
        self.reasons = list(reasons)


class MissingExtraError(VramplanError):
    """An optional dependency is not installed; the message names the pip command that adds it."""
