"""OmniRoute translator service."""
