"""A local Hugging Face causal LM (any ``AutoModelForCausalLM`` checkpoint directory), greedy decoding."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from vlmalign.llm.backends import BackendError
from vlmalign.utils.files import fingerprint


class HFCausalLMBackend:
    def __init__(self, model_path: str | Path, max_new_tokens: int = 512, device: str = "auto") -> None:
        self.model_path = Path(model_path).expanduser().resolve()
        if not (self.model_path / "config.json").is_file():
            raise BackendError(f"{self.model_path} is not a Hugging Face model directory (no config.json); "
                               "pass the path of a checkpoint saved with save_pretrained")
        self.max_new_tokens = max_new_tokens
        self.device = device

    @cached_property
    def identity(self) -> dict[str, Any]:
        # Names, sizes and times of the checkpoint files: a model retrained into the same directory gets
        # new cache keys instead of being served its predecessor's completions.
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.model_path.iterdir()
                       if p.is_file())
        return {"backend": "hf-causal-lm", "model": str(self.model_path), "files": fingerprint(files),
                "max_new_tokens": self.max_new_tokens, "decoding": "greedy"}

    @cached_property
    def _parts(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            # dtype="auto": the checkpoint's own dtype (bf16 for most LLMs), not an fp32 copy twice the size
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype="auto").to(device).eval()
        except (OSError, ValueError) as error:
            raise BackendError(f"cannot load the causal LM at {self.model_path}: {error}") from error
        return tokenizer, model, device

    def complete(self, prompt: str) -> str:
        import torch

        tokenizer, model, device = self._parts
        if getattr(tokenizer, "chat_template", None):  # instruction-tuned models expect their chat format
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
            encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)  # the template has its BOS
        else:
            encoded = tokenizer(prompt, return_tensors="pt")
        input_ids = encoded["input_ids"].to(device)
        attention_mask = encoded["attention_mask"].to(device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                    max_new_tokens=self.max_new_tokens, pad_token_id=pad_id)
        return tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True)
