"""Every error edgekd raises on purpose, in one module that imports nothing of edgekd.

Libraries at every level raise these, and the CLI maps them to exit codes (a config error: 2; a failed
build: 1), so they live under everything: no library imports the pipeline or the config tree just to raise.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field."""


class BuildError(RuntimeError):
    """A build step failed; the message says which step and why."""


class BuildFolderError(BuildError):
    """The build folder cannot be used (a file, not writable, or locked by another build)."""


class FidelityError(RuntimeError):
    """Two representations of the same model disagree; `result` holds the comparison dict."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


class EstimateError(ValueError):
    """A layer list the estimator cannot price; the message names the layer."""


class DesignDoesNotFitError(BuildError):
    """No setting fits the board within hls.max_utilization (the message names the layer and resource)."""


class NonFiniteError(BuildError):
    """Weights or logits with NaN or inf values."""


class LayerTooLargeError(BuildError):
    """A layer too large for the chosen hls.io_type."""


class ProjectError(RuntimeError):
    """The board project cannot be generated (names the file or setting that is wrong)."""
