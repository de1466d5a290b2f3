"""`python -m fraudlens` runs the command line."""

from fraudlens.cli import app

app(prog_name="fraudlens")
