"""Generated from proto/omniroute/v1; do not edit (make proto)."""
