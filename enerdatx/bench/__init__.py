"""Benchmarks behind ``enerdatx bench``: each measures its own baseline in the same run."""
