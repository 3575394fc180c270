"""What the console shows of a command's log (`make run`, `make schema`): warnings, except
the named ones that ask nothing of a user; the whole log goes to a file."""

import logging
import os
import time
from pathlib import Path

from absl import logging as absl_logging

# Warnings TFX 1.16, TFMA and Beam print on every run that ask nothing of the user (Transform
# writes its examples without the payload_format property its readers look for; Beam checksums
# TFRecords with crcmod's C extension where python-snappy is missing; TensorFlow's notes that
# start "From <file>: ... is deprecated"; Keras timing its own progress line against batches of
# a few milliseconds, as small BATCH_SIZEs on 2 cores give; tf.Transform's note that a named
# analyzer's graph path changes between tracings, as tf.map_fn's generated function names do
# for the photos profile's channel statistics), and the resolver's complaints that a first run
# has no statistics or push before it yet.
HARMLESS_WARNINGS = (
    "ArtifactQuery.property_predicate is not supported",
    "From ",
    "Examples artifact does not have payload_format custom property",
    "Couldn't find python-snappy",
    "Callback method `on_train_batch_",
    "Analyzer (channel_mean",
)
FIRST_RUN = "_resolver] Input resolution error"


def shown_on_console(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not (
        message.startswith(HARMLESS_WARNINGS)
        or (FIRST_RUN in message and message.endswith("returned None."))
    )


def log_to_file(log_dir: Path, command: str) -> str:
    """Every INFO line goes to a log file in `log_dir` named after the `command` and the time;
    the console shows warnings, the progress lines and Keras' epoch lines (all of it with
    VERBOSE=1)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / time.strftime(f"{command}-%Y%m%d-%H%M%S.log")
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    console_handler = logging.StreamHandler()
    console_handler.setLevel(logging.INFO if os.environ.get("VERBOSE") else logging.WARNING)
    console_handler.addFilter(shown_on_console)
    logging.basicConfig(level=logging.INFO, handlers=[file_handler, console_handler], force=True)
    absl_logging.set_verbosity(absl_logging.INFO)
    tensorflow_logger = logging.getLogger("tensorflow")
    tensorflow_logger.setLevel(logging.WARNING)
    for handler in tensorflow_logger.handlers:
        handler.addFilter(shown_on_console)
    return str(path)
