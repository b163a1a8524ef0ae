"""rdistill: distill reasoning from a teacher language model into a small student."""

__version__ = "0.1.0"
