"""gittrigger: the server process, its HTTP edges, event sources and command line."""

__version__ = "0.1.0"
