"""OmniRoute executor service."""
