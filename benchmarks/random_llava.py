"""The randomly initialised LLaVA-style models of the GPU benchmarks: "1b" (~0.97B parameters) and "tiny" (the
CPU dry run's). Built from the same config classes as the shapes world's tiny backbone (CLIP vision tower +
projector + Llama), scaled up, seeded, so nothing is downloaded and every run trains the same weights.

    python -m benchmarks.random_llava --size 1b --cache-dir /tmp/bench   # builds once; prints {"model_dir": ...}

The directory is built once per cache dir (``ensure_tiny_llava_checkpoint``: locked, checksummed), so the members
of ``benchmarks/gpu_suite.sh`` and every rank of a torchrun share one copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SPECS = {
    # ~0.97B: CLIP-style tower 1024 x 12 (mlp 4x) at 224 px / patch 14 (256 image tokens); Llama 2048 x 12 (mlp 4x)
    "1b": dict(image_size=224, patch_size=14, vision_hidden=1024, vision_layers=12, vision_heads=16,
               text_hidden=2048, text_layers=12, text_heads=16, mlp_ratio=4, max_positions=1024),
    "tiny": dict(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                 text_hidden=32, text_layers=2, text_heads=2, max_positions=256),
}


def spec(size: str):
    from vlmalign.models.tiny_llava import TinyLlavaSpec

    if size not in SPECS:
        raise SystemExit(f"unknown model size {size!r}; choose one of {sorted(SPECS)}")
    return TinyLlavaSpec(**SPECS[size])


def ensure_model(size: str, cache_dir: str | Path) -> Path:
    """The saved model of ``size`` (and its processor) under ``cache_dir``, built on first use."""
    from vlmalign.models.loader import ensure_tiny_llava_checkpoint

    return ensure_tiny_llava_checkpoint(Path(cache_dir) / "models", spec(size))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SPECS), default="1b")
    parser.add_argument("--cache-dir", required=True)
    args = parser.parse_args(argv)
    print(json.dumps({"model": args.size, "model_dir": str(ensure_model(args.size, args.cache_dir))}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
