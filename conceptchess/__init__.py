"""conceptchess: what a chess network knows that humans don't, taught back through puzzles."""

__version__ = "0.1.0"
