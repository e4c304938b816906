"""Cell image data: synthetic generator, real-data readers, deterministic splits."""

from edgekd.data import cells  # noqa: F401  (registers the data sources in DATASETS)
