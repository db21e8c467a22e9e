-- The settings views never crash the server, in every configuration scripts/test.sh runs
-- (0.2.0: SHOW ALL, pg_settings or SHOW mfa_auth.encryption_keys killed the backend with
-- SIGSEGV while that deprecated setting was unset, because its show hook returned NULL).
-- Output is the same in every configuration: values that differ are compared, not printed.
SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(59)) AS library_loaded;
SELECT count(*) > 300 AS superuser_reads_pg_settings FROM (SELECT * FROM pg_settings) s;
SELECT count(*) AS mfa_auth_rows_for_superuser FROM pg_settings WHERE name LIKE 'mfa_auth.%';
SELECT current_setting('mfa_auth.encryption_keys') IS NOT NULL AS keys_shown_to_superuser,
       current_setting('mfa_auth.encryption_keys_file') IS NOT NULL AS key_file_shown_to_superuser;
-- SHOW ALL (its rows are the whole configuration: not printed), then a statement that shows
-- the backend is still there.
\o /dev/null
SHOW ALL;
\o
SELECT 'alive' AS after_show_all;

-- A member of pg_monitor (pg_read_all_settings): every setting readable, no key.
CREATE ROLE settings_monitor IN ROLE pg_monitor;
CREATE ROLE settings_plain;
SET ROLE settings_monitor;
SELECT count(*) > 300 AS monitor_reads_pg_settings FROM (SELECT * FROM pg_settings) s;
\o /dev/null
SHOW ALL;
\o
SELECT 'alive' AS monitor_after_show_all;
SELECT current_setting('mfa_auth.encryption_keys') IN ('', '(hidden)') AS monitor_sees_no_key;
SELECT current_setting('mfa_auth.encryption_keys_file') IS NOT NULL AS monitor_sees_the_path_only;
SELECT count(*) AS mfa_auth_rows_for_monitor FROM pg_settings WHERE name LIKE 'mfa_auth.%';
RESET ROLE;

-- A plain role: the superuser-only settings are refused (42501), the others shown.
SET ROLE settings_plain;
SELECT count(*) > 300 AS plain_reads_pg_settings FROM (SELECT * FROM pg_settings) s;
\o /dev/null
SHOW ALL;
\o
SELECT 'alive' AS plain_after_show_all;
-- (Postgres's own wording of this refusal changed in 16: the SQLSTATE is what is pinned.)
SELECT left(sqlstate_of('SHOW mfa_auth.encryption_keys'), 5) AS plain_show_keys;
SELECT left(sqlstate_of('SHOW mfa_auth.encryption_keys_file'), 5) AS plain_show_key_file;
SELECT current_setting('mfa_auth.totp_window') AS plain_show_window;
SELECT count(*) AS mfa_auth_rows_for_plain FROM pg_settings WHERE name LIKE 'mfa_auth.%';
RESET ROLE;
DROP ROLE settings_monitor;
DROP ROLE settings_plain;
