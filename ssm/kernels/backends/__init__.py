"""One module per backend with that backend's primitives for every op it supports (see registry.py)."""
