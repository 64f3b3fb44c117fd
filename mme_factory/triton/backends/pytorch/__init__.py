"""The emulated libtorch backend: model.py runs in Triton; the rule modules beside it are shared."""
