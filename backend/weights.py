"""The served model's weights, for callers that need the network itself (a token scorer, gist training).

`Backend.model_weights()` says where the served weights are on this machine (`ModelWeights`): the folder,
and the model already loaded in this process when there is one (the embedded engine's). A caller that
needs the network and finds it not loaded loads the folder with `load_causal_lm` (once per process per
folder, device and dtype, shared by everyone who asks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.model import LoadedModel

__all__ = ["LoadedModel", "ModelWeights", "load_causal_lm"]


@dataclass(frozen=True)
class ModelWeights:
    """Where the served weights are: `folder` on this machine, `loaded` when already in this process."""

    folder: Path
    loaded: LoadedModel | None = None

    def load(self, device: str = "cpu", dtype: str = "auto") -> LoadedModel:
        """The loaded model: the one in this process if its device fits, else the folder loaded (cached)."""
        if self.loaded is not None and (device is None or self.loaded.device.type == device.split(":")[0]):
            return self.loaded
        return load_causal_lm(str(self.folder), device, dtype)


def load_causal_lm(path: str, device: str = "cpu", dtype: str = "auto") -> LoadedModel:
    """A transformers causal LM from a local folder, loaded once per (path, device, dtype) and shared."""
    from .engine.model import load_causal_lm as load

    return load(path, device, dtype)


def __getattr__(name: str) -> Any:  # LoadedModel without importing torch until it is asked for
    if name == "LoadedModel":
        from .engine.model import LoadedModel

        return LoadedModel
    raise AttributeError(name)
