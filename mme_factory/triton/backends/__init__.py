"""Triton backends written in Python that the local server installs (see runtime.py)."""
