"""Implementations of the ``headpose-ros`` subcommands."""
