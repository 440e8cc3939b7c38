"""Command-line tools (console scripts call each module's ``main``)."""
