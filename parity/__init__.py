"""Framework-neutral core of the Keras/Lightning parity harness (numpy only at module level)."""

__version__ = "0.1.0"
