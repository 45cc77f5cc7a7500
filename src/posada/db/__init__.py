"""Database access: the embedded server, migrations and the connection pool."""
