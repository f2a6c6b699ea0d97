"""vlmalign: Hydra + Lightning framework for aligning vision-language models."""

__version__ = "0.1.0"
