"""Tests of the storage layer: the PostgreSQL backend on a throwaway cluster (tests/pgcluster.py)."""
