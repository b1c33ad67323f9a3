"""The pieces of ``tools/run.py`` (``make run``): where things live, readiness probes, and the helper roles.

``layout`` resolves ports, URLs and the data folder from the environment; ``probes`` answers "is this address
ready?" for every protocol the suite speaks; ``roles`` holds the small processes the launcher runs under honcho
next to the servers (the PostgreSQL guard, the start gate of each service, and the banner).
"""
