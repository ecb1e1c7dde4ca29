"""The samplers: ER-SDE-Solver-1/2/3 (:mod:`.ersde`) on one step plan (:mod:`.plan`), the baselines
(:mod:`.baselines`, :mod:`.flow`), the options every sampler shares (:mod:`._common`) and the one sampler
registry (:mod:`.registry`)."""

from .registry import FLOW_SAMPLERS, MODEL_KINDS, SAMPLERS, Sampler, available_samplers, run_sampler, steps_for_nfe

__all__ = ["FLOW_SAMPLERS", "MODEL_KINDS", "SAMPLERS", "Sampler", "available_samplers", "run_sampler", "steps_for_nfe"]
