-- Maintenance procedures that commit as they go (for large backlogs). A procedure that
-- COMMITs cannot be SECURITY DEFINER or carry a SET clause, so these run as the caller and
-- call SECURITY DEFINER functions for each batch; every name, type and operator is qualified,
-- the variables' types too: unqualified, they resolve under the caller's search_path, which
-- the database's owner sets (ALTER DATABASE ... SET search_path) and can point at a domain
-- of theirs whose CHECK then runs as whoever calls the procedure.
-- EXECUTE is revoked from PUBLIC (sql/grants.sql): grant the procedure and its step together.
-- CALL them outside a transaction block (in autocommit), as any procedure that commits.

-- Deletes challenges created more than `older_than` ago, `batch_size` per transaction, with
-- the cutoff computed once at the start (challenges created meanwhile are left alone).
CREATE PROCEDURE auth.cleanup_challenges_batched(older_than interval DEFAULT '24 hours',
                                                 batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    cutoff pg_catalog.timestamptz;
    deleted pg_catalog.int8;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF older_than OPERATOR(pg_catalog.<) interval '0' THEN
        RAISE EXCEPTION 'invalid older_than: must not be negative' USING ERRCODE = '22023';
    END IF;
    cutoff := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) older_than;
    LOOP
        deleted := auth.cleanup_challenges_batch(cutoff, batch_size);
        COMMIT;
        EXIT WHEN deleted OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

-- Re-encrypts every TOTP secret not sealed with the current key, `batch_size` per
-- transaction (auth.rotate_secrets does one batch).
CREATE PROCEDURE auth.rotate_secrets_batched(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    done pg_catalog.int8;
BEGIN
    LOOP
        done := auth.rotate_secrets(batch_size);
        COMMIT;
        EXIT WHEN done OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;
