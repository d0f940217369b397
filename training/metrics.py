"""Throughput accounting: model FLOPs per step, MFU against a peak, memory."""

from __future__ import annotations

import torch

# Dense bf16 tensor-core peaks (FLOP/s, no sparsity), matched against torch.cuda.get_device_name.
GPU_BF16_PEAK = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),  # fp16: V100 has no bf16
    ("T4", 65e12),  # fp16
]


def device_name() -> str:
    """The device a process trains on, as a cost is stated against: the CUDA device's name, else the
    CPU and its core count."""
    import os
    import platform

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def peak_flops(cpu_peak: float) -> float:
    """Peak FLOP/s of this process's device: the GPU table, else the configured CPU peak."""
    if not torch.cuda.is_available():
        return cpu_peak
    name = torch.cuda.get_device_name()
    for key, value in GPU_BF16_PEAK:
        if key in name:
            return value
    return cpu_peak


def flops_per_step(model_config, tokens: int, predicted: int, seq_len: int) -> float:
    """Training FLOPs (forward + backward ≈ 3 × forward) of one step.

    6 per parameter per token for the encoder's dense layers, 12·layers·hidden·seq per token for
    attention scores and values (PaLM's count), and 6·hidden·vocab per predicted (masked) token for
    the output layer, which runs only at masked positions."""
    hidden, layers = model_config.hidden_size, model_config.num_hidden_layers
    inner = getattr(model_config, "intermediate_size", 4 * hidden)
    dense = layers * (4 * hidden * hidden + 2 * hidden * inner)
    per_token = 6 * dense + 12 * layers * hidden * seq_len
    head = 6 * (hidden * hidden + hidden * model_config.vocab_size)
    return float(per_token * tokens + head * predicted)


def memory_metrics() -> dict[str, float]:
    if not torch.cuda.is_available():
        return {}
    return {
        "gpu/memory_allocated_gb": torch.cuda.memory_allocated() / 2**30,
        "gpu/max_memory_allocated_gb": torch.cuda.max_memory_allocated() / 2**30,
    }
