"""ZeRO's gradient buckets are sized to the model (a CPU run spent more system time allocating
DeepSpeed's default 2 GB bucket every micro-step than training)."""

from __future__ import annotations

from weam.training.config import OptimConfig, ParallelConfig
from weam.training.distributed import DEEPSPEED_BUCKET_ELEMENTS, deepspeed_config


def zero(parameters, **parallel):
    return deepspeed_config(OptimConfig(), ParallelConfig(**parallel), 8, 1, 10, parameters)["zero_optimization"]


def test_buckets_hold_at_most_the_models_gradients():
    assert zero(1_234_567, zero_stage=1) == {"stage": 1, "reduce_bucket_size": 1_234_567,
                                            "allgather_bucket_size": 1_234_567}
    big = zero(10**10, zero_stage=2)
    assert big["reduce_bucket_size"] == big["allgather_bucket_size"] == DEEPSPEED_BUCKET_ELEMENTS


def test_without_a_parameter_count_deepspeed_keeps_its_defaults_and_overrides_win():
    assert zero(None, zero_stage=1) == {"stage": 1}
    overridden = zero(1000, zero_stage=2, deepspeed_overrides={"zero_optimization": {"reduce_bucket_size": 77}})
    assert overridden["reduce_bucket_size"] == 77 and overridden["allgather_bucket_size"] == 1000
