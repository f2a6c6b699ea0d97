"""Processors that load without torchvision: Qwen2-VL and Qwen2.5-VL with no video processor.

transformers 5 builds these processors with a video processor, and that one needs torchvision, which has no
build for some torch installs (this project's CPU torch among them): ``AutoProcessor`` then fails before any
image is seen. vlmalign trains and evaluates on images only, so when torchvision is missing these families load
an image-only subclass: the same image processor, tokenizer, chat template and image-token expansion, declared
with two sub-processors instead of three. It saves under the parent's class name, so an export loads with plain
``AutoProcessor`` wherever torchvision is installed.
"""

from __future__ import annotations

from functools import cache

from transformers import AutoConfig, AutoProcessor
from transformers.utils import is_torchvision_available


@cache
def image_only(processor_class: type) -> type:
    """``processor_class`` without its ``video_processor`` (ProcessorMixin reads the sub-processors from the
    ``__init__`` signature; the parent is handed ``None`` for the video processor, which it only stores)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        processor_class.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def to_dict(self) -> dict:
        out = processor_class.to_dict(self)
        out["processor_class"] = processor_class.__name__
        return out

    return type(f"{processor_class.__name__}ImageOnly", (processor_class,), {
        "__init__": __init__, "to_dict": to_dict, "__doc__": f"{processor_class.__name__} for images only."})


def _video_families() -> dict[str, type]:
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor

    return {"qwen2_vl": Qwen2VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor}


def load_processor(source: str, **kwargs):
    """``AutoProcessor.from_pretrained(source, **kwargs)``, image-only for the families above without torchvision."""
    if not is_torchvision_available():
        model_type = getattr(AutoConfig.from_pretrained(source, trust_remote_code=kwargs.get("trust_remote_code",
                                                                                            False)), "model_type", None)
        family = _video_families().get(model_type)
        if family is not None:
            return image_only(family).from_pretrained(source, **kwargs)
    return AutoProcessor.from_pretrained(source, **kwargs)
