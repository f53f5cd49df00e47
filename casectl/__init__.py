"""casectl: case management from the command line, in one SQLite file."""

__version__ = "0.1.0"
