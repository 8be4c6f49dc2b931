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
    # A per-epsilon DP recipe that does not parse.
    (("pipelines.study", "--preset=paper", "--dp_epsilons=3,1000", "--dp_override=1000:adam",
      "--output_dir=OUT"), "Invalid value for argument `dp_override`"),
    # An absl flag that does not parse.
    (("pipelines.train", "--epochs=abc", "--output_dir=OUT"), "--epochs"),
    # A size the data cannot hold (digits has 1,500 training images).
    (("pipelines.train", "--dataset=digits", "--num_members=100000", "--output_dir=OUT"),
     "The largest num_members with as many non-members and these other sizes is"),
])
@pytest.mark.slow
def test_usage_errors_are_one_line_with_status_2(tmp_path, args, message):
    result = _run(*(a.replace("OUT", str(tmp_path / "out")) for a in args))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "USAGE" not in result.stderr


@pytest.mark.slow
def test_verbosity_keeps_the_traceback(tmp_path):
    result = _run("pipelines.study", "--preset=quick", "--methods=baseline,svm", "--verbosity=1",
                  f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "Invalid value for argument `methods`" in result.stderr


def test_run_turns_a_usage_error_into_one_line_and_status_2_in_process(monkeypatch, capsys):
    # The quick check of `cli.run` (the subprocess tests above are marked slow): absl's
    # `app.run` is replaced, so that the process-wide flags stay unparsed.
    from pipelines import cli  # pylint: disable=g-import-not-at-top
    monkeypatch.setattr(cli.app, "run", lambda main, flags_parser: main(["prog"]))

    def usage_error(argv):
        raise ValueError(f"Invalid value for argument `methods`. Received: {argv[1:]}")

    with pytest.raises(SystemExit) as exited:
        cli.run(usage_error)
    assert exited.value.code == 2
    assert capsys.readouterr().err == "Error: Invalid value for argument `methods`. Received: []\n"

    def bug(argv):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        cli.run(bug)
