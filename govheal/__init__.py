"""govheal: self-healing and governance for a fleet of long-running agents."""

__version__ = "0.1.0"
