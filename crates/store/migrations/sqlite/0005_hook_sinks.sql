-- The consent hooks are the fleet's (PostgreSQL only, see the PostgreSQL migration of the
-- same number); the SQLite schema keeps the same version numbers and has nothing to change.
SELECT 1;
