"""Delivery: the stack controller — claims from storage, sends through the cart adapters, settles.

Above storage and the carts; only the CLI and the OSS import it (DESIGN.md §6).
"""
