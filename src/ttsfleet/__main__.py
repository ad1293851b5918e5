"""`python -m ttsfleet` runs the CLI, so tests and the local fleet can start it with any interpreter."""

from ttsfleet.cli import main

main()
