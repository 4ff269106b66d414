"""Running the classifier: onnxruntime on the CPU (the int8 graph as shipped), or torch on CUDA (the same
int8 weights dequantized into the student network, run in bfloat16).

Both take padded numpy batches and give [batch, tokens] float32 self-information in nats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .card import ClassifierCard, ClassifierUnavailable


class Runtime(Protocol):
    device: str

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray: ...


class OnnxRuntime:
    """The int8 ONNX graph on `threads` CPU threads (default: the cores this process may use, up to 8)."""

    device = "cpu"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ClassifierUnavailable(
                "onnxruntime is not installed, so the classifier cannot run"
            ) from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(8, len(os.sched_getaffinity(0)))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # no busy-waiting between ops: the serving engine shares these cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # a file onnxruntime refuses: say so and let the caller fall back
            raise ClassifierUnavailable(f"onnxruntime cannot load {path}: {error}") from error
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return np.asarray(self.session.run(None, {k: feeds[k] for k in self.inputs})[0], dtype=np.float32)


class TorchRuntime:
    """The student network with the int8 weights of the ONNX file dequantized, on `device` (CUDA)."""

    def __init__(self, path: Path, card: ClassifierCard, device: str) -> None:
        import torch

        from .student import from_config

        model = from_config(card.student["config"])
        state = dequantized_state(path, card.student["onnx_names"])
        missing = set(model.state_dict()) - set(state) - {"encoder.embeddings.position_ids"}
        if missing:
            raise ClassifierUnavailable(f"the classifier file {path} lacks weights for {sorted(missing)[:3]}")
        model.load_state_dict(state, strict=False)
        self.device = device
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = model.to(device=device, dtype=self.dtype).eval()

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        import torch

        def move(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(self.device, non_blocking=True)

        with torch.inference_mode():
            values = self.model(move(ids), move(mask), move(types))
            return values.float().cpu().numpy()


def dequantized_state(path: Path, names: dict[str, list[list[Any]]]) -> dict[str, Any]:
    """Torch parameters from the ONNX file: `names` maps an initializer of the float graph to the
    [torch name, transposed] pairs it holds; int8 ones are stored as NAME_quantized, NAME_scale and
    NAME_zero_point."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, Any] = {}
    for name, params in names.items():
        if f"{name}_quantized" in arrays:
            value = _dequantize(
                arrays[f"{name}_quantized"], arrays[f"{name}_scale"], arrays[f"{name}_zero_point"]
            )
        elif name in arrays:
            value = arrays[name].astype(np.float32)
        else:
            raise ClassifierUnavailable(f"the classifier file {path} has no weight named {name}")
        for param, transposed in params:
            state[param] = torch.from_numpy(np.ascontiguousarray(value.T if transposed else value))
    return state


def _dequantize(values: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    scale = scale.astype(np.float32)
    zero = zero.astype(np.float32)
    if scale.size > 1 and values.shape[-1] != scale.size:  # per-channel along the first axis
        scale, zero = scale.reshape(-1, 1), zero.reshape(-1, 1)
    return (values.astype(np.float32) - zero) * scale
