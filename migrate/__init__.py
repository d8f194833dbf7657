"""Move an existing MLflow (SQLite file + local artifact folder) onto the platform's
PostgreSQL + S3, schema first. Run as `python -m migrate --help`; see docs/migrate.md.
"""
