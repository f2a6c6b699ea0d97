"""Silence library notices that every run repeated and that advise nothing a user of vlmalign can act on.

Installed when ``vlmalign`` is imported (before transformers or Lightning log anything). Each filter drops one
notice by its text, on the logger that emits it; everything else those loggers say still shows.

- transformers: "``CLIPImageProcessor`` requires torchvision (not installed); falling back to ...Pil". The PIL
  image processors are the ones meant here: torchvision has no build for the CPU torch this project pins, and
  the PIL path gives the same pixels for the resize/normalise the tiny model and the HF presets use.
- Lightning: "Tip: ... try installing litlogger" on every fit (an advertisement for a hosted service).
"""

from __future__ import annotations

import logging

NOTICES = {
    "transformers.utils.import_utils": "requires torchvision (not installed); falling back to",
    "pytorch_lightning.utilities.rank_zero": "try installing [litlogger]",
    "lightning.pytorch.utilities.rank_zero": "try installing [litlogger]",
}


class _DropNotice(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in str(record.msg)


def install() -> None:
    for name, text in NOTICES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNotice) for f in logger.filters):
            logger.addFilter(_DropNotice(text))
