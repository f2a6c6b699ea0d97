"""What the GPU benchmarks report the same way: the machine, peak memory, model FLOPs and MFU, one JSON line.

Model FLOPs follow the usual dense-transformer count (Kaplan et al. 2020; PaLM's MFU): 2 N per token of a forward
(N = parameters), 6 N per token of a forward + backward. Attention's T^2 term is left out (sequences here are
< 400 tokens, so it is a few per cent). MFU = model FLOPs per second / (devices x peak dense bf16 FLOP/s): useful
work, so a run that skips work (prefix sharing) is not credited for the tokens it did not run.
"""

from __future__ import annotations

import json
import math
import platform
import sys

# Dense bf16 peak of one GPU, TFLOP/s, from the vendor's data sheets (without sparsity). The H200 is the H100's
# silicon with more memory; PCIe H100s are slower (756).
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}
# A CPU dry run has no meaningful peak; 1 TFLOP/s keeps the MFU arithmetic exercised and finite (and obviously
# not a GPU figure).
NOMINAL_CPU_TFLOPS = 1.0


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def peak_tflops(override: float | None = None) -> tuple[float, str]:
    """The peak to divide by and where it came from: ``override``, the GPU's data sheet, or the CPU nominal."""
    if override is not None:
        if not override > 0:
            raise SystemExit(f"--peak-tflops={override} must be > 0")
        return override, "given"
    if not cuda_available():
        return NOMINAL_CPU_TFLOPS, "nominal: CPU dry run, not a GPU figure"
    import torch

    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific first ("H100 PCIe" before "H100")
        if key in name:
            return value, f"data sheet ({key})"
    raise SystemExit(f"no known bf16 peak for GPU {name!r}; pass --peak-tflops")


def synchronize() -> None:
    """Wait for queued GPU work, so a wall-clock interval covers it (nothing on CPU)."""
    if cuda_available():
        import torch

        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    if cuda_available():
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict:
    """Peak GPU memory, allocated (tensors) and reserved (the caching allocator's pool, what the GPU sees), or on a
    CPU run the process's peak RSS; ``peak_memory_gib`` is the larger figure either way."""
    if cuda_available():
        import torch

        allocated, reserved = torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30
        return {"peak_memory_gib": max(allocated, reserved), "peak_allocated_gib": allocated,
                "peak_reserved_gib": reserved, "peak_memory_source": "cuda"}
    from benchmarks.process_memory import peak_rss_mib

    rss = peak_rss_mib() / 1024
    return {"peak_memory_gib": rss, "peak_memory_source": "rss"}


def machine() -> dict:
    """Versions and the device, so a line can be read without knowing where it ran."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "gpus": torch.cuda.device_count()}
    for package in ("transformers", "deepspeed", "pytorch_lightning", "trl"):
        module = sys.modules.get(package)
        if module is not None:  # only what the member imported: importing here would cost seconds
            info[package] = getattr(module, "__version__", "?")
    return info


def dense_flops(parameters: int, *, trained_tokens: float = 0, forward_tokens: float = 0) -> float:
    """Model FLOPs: 6 N per trained token (forward + backward), 2 N per forward-only token (a reference, old
    log-probs, a generated token)."""
    return parameters * (6 * trained_tokens + 2 * forward_tokens)


def mfu(flops: float, seconds: float, devices: int, peak: float) -> float:
    """Model-FLOPs utilisation of ``flops`` done in ``seconds`` on ``devices`` of ``peak`` TFLOP/s each."""
    return flops / (seconds * devices * peak * 1e12)


def emit(result: dict) -> None:
    """The one JSON line a member prints on stdout (its last line; chatter belongs on stderr). NaN or infinity is
    an error: it would make the line invalid JSON for strict readers, and it means a broken measurement."""
    bad = [key for key, value in result.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ValueError(f"non-finite measurements {bad} in {result}")
    print(json.dumps({**result, **machine()}), flush=True)
