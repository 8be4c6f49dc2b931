"""Command-line failures: one `Error:` line and exit status 2, the traceback only when asked."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"})


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


@pytest.mark.parametrize("args,message", [
    # An invalid configuration, raised by the library's checks.
    (("pipelines.study", "--preset=quick", "--methods=baseline,svm", "--output_dir=OUT"),
     "Invalid value for argument `methods`"),
    # An absl flag that does not parse.
    (("pipelines.train", "--epochs=abc", "--output_dir=OUT"), "--epochs"),
    # A size the data cannot hold (digits has 1,500 training images).
    (("pipelines.train", "--dataset=digits", "--num_members=100000", "--output_dir=OUT"),
     "The largest num_members with as many non-members and these other sizes is"),
])
def test_usage_errors_are_one_line_with_status_2(tmp_path, args, message):
    result = _run(*(a.replace("OUT", str(tmp_path / "out")) for a in args))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "USAGE" not in result.stderr


def test_verbosity_keeps_the_traceback(tmp_path):
    result = _run("pipelines.study", "--preset=quick", "--methods=baseline,svm", "--verbosity=1",
                  f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "Invalid value for argument `methods`" in result.stderr
