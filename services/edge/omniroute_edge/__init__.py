"""OmniRoute edge service."""
