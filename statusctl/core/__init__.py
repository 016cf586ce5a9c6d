"""The rules applied to stored data: labels, events, stores, settings, orders and the change engine.

Between storage (below: every SQL statement) and the cart adapters (above). No typer, no rich.
"""
