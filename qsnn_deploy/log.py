"""qsnn-deploy's messages: the package logger and the progress-bar switch.

The library prints nothing itself. Informational messages (training progress lines, a Lava build
that fell back to netx's network, ...) go to the ``qsnn_deploy`` logger or its children
(``logging.getLogger("qsnn_deploy.train.trainer")``, ...); warnings about a result stay Python
warnings (:class:`~qsnn_deploy.errors.QSNNWarning`). A program that uses the library decides what
it sees with the standard :mod:`logging` configuration, e.g.::

    import logging
    logging.basicConfig(level=logging.INFO)            # show qsnn-deploy's progress messages
    logging.getLogger("qsnn_deploy").setLevel(logging.WARNING)   # or silence them

Without any configuration, Python shows warnings and errors only (INFO and DEBUG are dropped).
The command-line tools configure it themselves (``--quiet`` / ``--verbose``,
:mod:`qsnn_deploy.cli.common`).

Progress bars (tqdm, while training) are shown unless :func:`set_progress` turned them off
(``--quiet`` does).
"""
from __future__ import annotations

import logging

#: Name of the package logger; every module logs to a child of it.
LOGGER_NAME = "qsnn_deploy"

logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())  # a library adds no output of its own (logging HOWTO)

_progress = True


def get_logger(name: str) -> logging.Logger:
    """The logger for module ``name`` (``__name__`` of a qsnn_deploy module, or a short suffix
    such as ``"train"``): always ``qsnn_deploy`` or one of its children."""
    if name != LOGGER_NAME and not name.startswith(LOGGER_NAME + "."):
        name = f"{LOGGER_NAME}.{name}"
    return logging.getLogger(name)


def progress_enabled() -> bool:
    """Whether progress bars are shown (default True; False after ``set_progress(False)``)."""
    return _progress


def set_progress(enabled: bool) -> bool:
    """Turn progress bars on or off for this process; returns the previous setting."""
    global _progress
    previous, _progress = _progress, bool(enabled)
    return previous
