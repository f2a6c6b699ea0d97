"""vlmalign: Hydra + Lightning framework for aligning vision-language models."""

__version__ = "0.1.0"

from vlmalign.utils import quiet as _quiet

_quiet.install()  # before transformers and Lightning are imported: their repeated notices (vlmalign/utils/quiet.py)
