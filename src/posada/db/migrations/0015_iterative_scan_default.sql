-- Filtered HNSW scans (one hotel, one unit among many) keep scanning until they fill k rows
-- (pgvector 0.8). The pool also sets this on each connection it opens, but behind a
-- transaction pooler (PgBouncer, Supabase's port 6543) a SET stays on whichever server
-- connection ran it: as the database's default it holds on every server connection,
-- from their next start. A role that may not alter the database sets it for itself;
-- one that may do neither is told (posada then warns at start behind a pooler).
DO $$
BEGIN
    -- Load pgvector here, so the setting is known and its value checked.
    PERFORM '[1]'::vector;
    BEGIN
        EXECUTE format('ALTER DATABASE %I SET hnsw.iterative_scan = relaxed_order',
                       current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        BEGIN
            EXECUTE format('ALTER ROLE %I SET hnsw.iterative_scan = relaxed_order',
                           current_user);
            RAISE NOTICE 'hnsw.iterative_scan set for role % only: it may not alter database %',
                current_user, current_database();
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'hnsw.iterative_scan not set as a default (role % may not); '
                'behind a transaction pooler, run as the database owner: '
                'ALTER DATABASE % SET hnsw.iterative_scan = relaxed_order',
                current_user, current_database();
        END;
    END;
END
$$;
