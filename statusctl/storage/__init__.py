"""Storage: the database behind one interface, SQLite or PostgreSQL; every SQL statement lives here.

It imports only the domain (DESIGN.md §6).
"""
