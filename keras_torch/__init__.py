"""Keras 3 on its torch backend: the tf_models builders, unchanged, trained on PyTorch kernels (`keras-torch`).

The worker (`python -m keras_torch.worker`) runs with KERAS_BACKEND=torch (parity.jobs.FRAMEWORK_ENV)
and hides TensorFlow from its process (keras_torch.runtime), so this column runs as it would on a
machine with torch and no TensorFlow. Nothing here is imported by the Keras or Lightning workers.
"""
