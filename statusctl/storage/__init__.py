"""Storage backends (issue 14): PostgreSQL here; SQLite joins from core/db.py when the modules move."""
