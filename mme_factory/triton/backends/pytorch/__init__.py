"""The emulated libtorch backend: model.py runs inside Triton; tensor_binding.py is shared."""
