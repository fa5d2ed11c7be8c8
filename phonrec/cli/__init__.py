"""The command layer: argument parsing, files and progress for each console command.

Nothing below this package imports it; each module here is one command (``python -m phonrec.cli.NAME``).
"""
