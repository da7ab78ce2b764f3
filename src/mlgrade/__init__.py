"""mlgrade: an automated grader for a six-month machine-learning curriculum."""

__version__ = "0.1.0"
