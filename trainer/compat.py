"""Everything the project does that rests on a library's private behaviour, in one place, each
with the versions it was checked on. `compat_test.py` checks each behaviour and fails, naming
the entry, when an installed version is not the one checked: read the entry again then.

It sits in trainer/, the lowest layer, so that every folder may import it."""

import atexit
import logging
import os
import sys
from collections.abc import Callable

# The versions each entry below was checked on (requirements.lock pins them).
CHECKED_ON = {"tensorflow": "2.16.2", "tf_keras": "2.16.0", "python": "3.10"}


def leave_tf_keras_to_run_as_written() -> None:
    """AutoGraph leaves the `keras` package alone (its code runs in graphs as written) but not
    Keras 2 under its new name `tf_keras`: it rewrote tf_keras' whole training engine and
    preprocessing layers on first use, about 20 s of the Trainer's start-up on 2 cores. Adds the
    same rule for the new name to AutoGraph's private CONVERSION_RULES (TensorFlow 2.16)."""
    # Imported here: the other entries serve processes that must start without TensorFlow.
    from tensorflow.python.autograph.core import config as autograph_config

    if not any(
        getattr(rule, "_prefix", None) == "tf_keras" for rule in autograph_config.CONVERSION_RULES
    ):
        autograph_config.CONVERSION_RULES = (
            autograph_config.DoNotConvert("tf_keras"),
            *autograph_config.CONVERSION_RULES,
        )


def run_with_own_exit_handlers(main: Callable[[], None]) -> None:
    """Runs `main` in a forked child as `python -m` would run it: the exit handlers `main`
    registers (AutoGraph's removal of its generated sources is one) run when it ends, and those
    the parent registered before the fork do not (the forkserver's stay its own). A forked
    child ends in os._exit, which skips exit handlers; CPython's private atexit._clear and
    atexit._run_exitfuncs (3.10) give them back."""
    atexit._clear()
    try:
        main()
    finally:
        atexit._run_exitfuncs()


def exit_now(status: int) -> None:
    """Ends the process once output is flushed, skipping interpreter shutdown: there, objects
    that TensorFlow functions left in Beam's and TFDV's caches finalize after TensorFlow's
    module state is gone and print "Exception ignored in AtomicFunction.__del__" tracebacks
    (TensorFlow 2.16 with TFX 1.16's Beam components)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
