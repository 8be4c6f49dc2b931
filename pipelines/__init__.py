"""The command lines (`python -m pipelines.<name>`), which start without TensorFlow's notices."""

from pipelines import quiet

# Runs before any pipeline module imports TensorFlow (see pipelines/quiet.py).
quiet.quiet_start()
