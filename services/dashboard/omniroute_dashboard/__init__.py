"""OmniRoute dashboard service."""
