"""Shared core of the OmniRoute services.

Everything here is a library: nothing reads the environment or opens a connection at import time. Services build
settings and clients in their ``main()`` and pass them down.
"""
