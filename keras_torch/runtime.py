"""The keras-torch worker's process set-up: torch's compiler stack first, TensorFlow hidden, then Keras on torch.

Keras imports TensorFlow lazily wherever it is installed (keras.src.utils.module_utils.LazyModule:
serialization, some layers and data adapters ask `tf.available`), and TensorFlow loaded next to
the CUDA build of torch crashes the process unless torch._dynamo came first (DESIGN.md, "One
process per framework"). The worker imports torch._dynamo, then installs `HideTensorFlow`, under
which `import tensorflow` raises ImportError: LazyModule.available is then False and Keras takes
its TensorFlow-free paths, as on a machine without TensorFlow. No TensorFlow kernel and no tf.data
runs in this column.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType


class HideTensorFlow(importlib.abc.MetaPathFinder):
    """A meta path finder under which `import tensorflow` (and its submodules) raises ImportError."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> None:
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is hidden in the keras-torch worker: Keras runs on its torch backend here, "
                              "as on a machine without TensorFlow (keras_torch.runtime)")
        return None


def start_keras_on_torch() -> ModuleType:
    """Import torch._dynamo, hide TensorFlow, import Keras; returns keras. RuntimeError where the backend is not
    torch or TensorFlow is already loaded (the fix: start the process through parity.jobs, or with
    KERAS_BACKEND=torch, before anything imports TensorFlow)."""
    import torch._dynamo  # noqa: F401  (before anything that could load TensorFlow)

    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow is already imported in this process; the keras-torch worker must start "
                           "before anything imports it (run it as `python -m keras_torch.worker`)")
    if not any(isinstance(finder, HideTensorFlow) for finder in sys.meta_path):
        sys.meta_path.insert(0, HideTensorFlow())
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"Keras runs on its {keras.backend.backend()} backend; the keras-torch worker needs "
                           "KERAS_BACKEND=torch in its environment from its start (parity.jobs.FRAMEWORK_ENV sets it)")
    return keras
