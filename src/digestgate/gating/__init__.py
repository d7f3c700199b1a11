"""The gate and verify verbs: collect and check evidence, decide, sign and check VSAs.

The pure evaluation they run is :mod:`digestgate.rules`.
"""
