"""A quiet start: TensorFlow's C++ start-up notices are filtered out of stderr.

On a CPU-only host, importing TensorFlow 2.21 (and its first device query)
prints, before any output of the program:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    I0000 ... cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...
    To enable the following instructions: AVX2 ..., in other operations, rebuild ...
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...

(the first three lines twice: two of TensorFlow's shared libraries log them).
Environment variables do not help: the first three are logged before absl's
logging is initialised, so `TF_CPP_MIN_LOG_LEVEL`, `GLOG_minloglevel`,
`ABSL_MIN_LOG_LEVEL` and `CUDA_VISIBLE_DEVICES` do not reach them;
`TF_CPP_MIN_LOG_LEVEL=1` hides the CPU-feature notice and `=3` the cuInit
error, but `=3` also hides every later TensorFlow error;
`TF_ENABLE_ONEDNN_OPTS=0` hides the oneDNN notice by turning oneDNN's kernels
off (other numbers, slower). So `quiet_start` redirects file descriptor 2 to
a temporary file while TensorFlow is imported and lists its devices, then writes
back every line that is not one of these notices (Python warnings, other
errors).

`python -m pipelines.<name>` imports the `pipelines` package first, whose
`__init__` calls `quiet_start`, so every pipeline starts quietly.
`--verbosity=1` (or higher, `-v 1`) or `MCMIA_TF_VERBOSE_STARTUP=1` keeps the
full output.
"""

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator, Optional, Sequence

__all__ = ["STARTUP_NOTICES", "VERBOSE_ENV", "filtered_stderr", "is_startup_notice",
           "quiet_start"]

VERBOSE_ENV = "MCMIA_TF_VERBOSE_STARTUP"

# One pattern per known notice (matched anywhere in a line).
STARTUP_NOTICES = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"\] oneDNN custom operations are on\.",
    r"\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"\] failed call to cuInit: ",
    r"\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .*, in other operations, rebuild TensorFlow",
)
_NOTICE = re.compile("|".join(f"(?:{pattern})" for pattern in STARTUP_NOTICES))


def is_startup_notice(line: str) -> bool:
    """Whether a stderr line is one of TensorFlow's known start-up notices."""
    return _NOTICE.search(line) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Holds back what is written to file descriptor 2 (C++ and Python alike) in the block.

    On exit, the lines that are not start-up notices are written to stderr.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (e.g. a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(True)
                    if not is_startup_notice(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _verbosity_requested(argv: Sequence[str]) -> bool:
    """`--verbosity=N` / `-v N` (absl's flag) with N >= 1 on the command line."""
    for position, arg in enumerate(argv):
        name, has_value, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-") or name not in ("verbosity", "v"):
            continue
        if not has_value:
            value = argv[position + 1] if position + 1 < len(argv) else ""
        try:
            if int(value) >= 1:
                return True
        except ValueError:
            pass
    return False


def quiet_start(argv: Optional[Sequence[str]] = None) -> None:
    """Imports TensorFlow (and lists its devices) with its start-up notices filtered out.

    Does nothing when TensorFlow is already imported, when `MCMIA_TF_VERBOSE_STARTUP`
    is set to a non-empty value other than 0, or when `argv` (default: `sys.argv`)
    asks for `--verbosity` >= 1.
    """
    argv = sys.argv[1:] if argv is None else argv
    if ("tensorflow" in sys.modules or os.environ.get(VERBOSE_ENV, "0") not in ("", "0")
            or _verbosity_requested(argv)):
        return
    with filtered_stderr():
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.config.list_physical_devices()  # the cuInit error comes with the first device query
