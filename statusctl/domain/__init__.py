"""The domain: rules and data with no I/O — errors, carriers, the cart matrix, record payloads, mapping rules.

The bottom layer: it imports nothing else of statusctl (DESIGN.md §6).
"""
