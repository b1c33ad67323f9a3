"""OmniRoute usage service."""
