"""The command-line shell over :mod:`cutout.api`: one module per command."""
