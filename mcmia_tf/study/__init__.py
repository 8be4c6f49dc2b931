"""The study: every method on one model and dataset, audited, exported and reported."""

from mcmia_tf.study.accelerators import accelerator_visible
from mcmia_tf.study.accelerators import configure_mixed_precision
from mcmia_tf.study.accelerators import resolve_jit_compile
from mcmia_tf.study.config import parse_dp_override
from mcmia_tf.study.config import PRESETS
from mcmia_tf.study.config import preset
from mcmia_tf.study.config import StudyConfig
from mcmia_tf.study.distribution import make_strategy
from mcmia_tf.study.distribution import split_cpu
from mcmia_tf.study.distribution import STRATEGIES
from mcmia_tf.study.report import render_markdown
from mcmia_tf.study.report import write_report
from mcmia_tf.study.results import validate_results
from mcmia_tf.study.results import without_wall_times
from mcmia_tf.study.runner import run_study
from mcmia_tf.study.stages import StageRunner

__all__ = ["PRESETS", "STRATEGIES", "StageRunner", "StudyConfig", "accelerator_visible",
           "configure_mixed_precision", "make_strategy", "parse_dp_override", "preset",
           "render_markdown", "resolve_jit_compile", "run_study", "split_cpu", "validate_results",
           "without_wall_times", "write_report"]
