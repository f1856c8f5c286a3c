"""capbuild: build multilingual image-caption datasets for CLIP-style training."""

__version__ = "0.1.0"
