"""The pipelines start without TensorFlow's C++ start-up notices on stderr."""

import os
import pathlib
import subprocess
import sys

import pytest

from pipelines import quiet

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What TensorFlow 2.21 prints when imported on a CPU-only host (timestamps shortened).
_NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796.0 11620 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796.1 11620 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "I0000 00:00:1796.2 11620 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to "
    "use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
    "E0000 00:00:1796.3 11620 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]


def test_only_the_known_notices_are_held_back(capfd):
    kept = ["UserWarning: something the user should see", "Error: a real error"]
    with quiet.filtered_stderr():
        # Written to the file descriptor, as TensorFlow's C++ logging does.
        os.write(2, "\n".join(_NOTICES[:3] + kept[:1] + _NOTICES[3:] + kept[1:]).encode() + b"\n")
    assert capfd.readouterr().err.splitlines() == kept


@pytest.mark.parametrize("argv,verbose", [
    ([], False), (["--verbosity=1"], True), (["--verbosity=0"], False), (["-v", "2"], True),
    (["--v=1"], True), (["--epochs=3", "--verbosity", "1"], True), (["--verbosity=-1"], False),
])
def test_verbosity_keeps_the_full_output(argv, verbose):
    assert quiet._verbosity_requested(argv) is verbose  # pylint: disable=protected-access


@pytest.mark.slow
def test_a_pipeline_prints_none_of_the_start_up_notices():
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", quiet.VERBOSE_ENV)}
    result = subprocess.run([sys.executable, "-m", "pipelines.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False, env=env)
    assert "--method" in result.stdout, result.stderr[-2000:]  # (absl's --help exits with 1)
    noisy = [line for line in result.stderr.splitlines() if quiet.is_startup_notice(line)
             or "absl::InitializeLog" in line or "cuda" in line.lower() or "oneDNN" in line]
    assert noisy == [], result.stderr[-2000:]
