"""digestgate: digest-locked, provenance-aware promotion of container images."""

__version__ = "0.1.0"
