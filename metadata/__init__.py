"""ai4-metadata documents: reading them safely, checking them, and turning them into mapping records."""
