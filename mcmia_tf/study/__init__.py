"""The study: every method on one model and dataset, audited, exported and reported."""

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

__all__ = ["PRESETS", "STRATEGIES", "StageRunner", "StudyConfig", "make_strategy", "preset",
           "render_markdown", "run_study", "split_cpu", "validate_results", "without_wall_times",
           "write_report"]
