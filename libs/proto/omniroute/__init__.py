"""Generated OmniRoute contracts."""
