"""Install-time attacks on schema `auth` (found on 0.2.0), replayed as an attacker would, over
real connections, each in a database of its own:

1. A non-superuser who may create schemas (the database's owner) creates `auth` before the
   administrator runs CREATE EXTENSION. 0.2.0 installed into it silently; its creator then
   renamed it, planted an `auth` schema of their own with a view `auth.mfa_factors` and a
   function `auth.uid()`, and called the extension's SECURITY DEFINER `my_factors()`, which
   ran their function as the installing superuser: ALTER ROLE ... SUPERUSER succeeded. Now
   CREATE EXTENSION refuses (42P06) and leaves nothing behind.
2. The same with a schema `auth` that Supabase Auth's admin role owns, with its tables.
3. After a proper install, the database owner tries every way to rename, replace, extend or
   re-point the schema and its objects: each fails with 42501 (or 42P06), and the attack's
   last step finds nothing to hijack.
4. A superuser who hands the schema to another role makes the library refuse (42501) instead
   of running statements whose names that role could re-point."""
import uuid

import psycopg
import pytest

from conftest import connect


@pytest.fixture
def attacker_db(database):
    """A database owned by a non-superuser LOGIN role (who may create schemas in it)."""
    suffix = uuid.uuid4().hex[:8]
    role, db = f"dbowner_{suffix}", f"attacked_{suffix}"
    with connect("postgres") as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
        c.execute(f"CREATE DATABASE {db} OWNER {role}")
    yield role, db
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        c.execute(f"DROP ROLE IF EXISTS {role}")


def is_superuser(role):
    with connect("postgres") as c:
        return c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]


PLANT = """
    ALTER SCHEMA auth RENAME TO auth_real;
    CREATE SCHEMA auth;
    CREATE VIEW auth.mfa_factors AS SELECT * FROM (VALUES (NULL::uuid)) v(user_id);
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE plpgsql AS $$
    BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', session_user); RETURN NULL; END $$;
"""


def test_attack_1_a_pre_created_auth_schema_is_refused(attacker_db):
    role, db = attacker_db
    with connect(db, user=role) as owner:
        owner.execute("CREATE SCHEMA auth")
    with connect(db) as admin:
        with pytest.raises(psycopg.errors.DuplicateSchema) as e:
            admin.execute("CREATE EXTENSION mfa_auth")
        diag = e.value.diag
        assert f'belongs to role "{role}"' in diag.message_primary or f"belongs to role {role}" in diag.message_primary
        assert "DROP SCHEMA auth" in diag.message_hint
        # Nothing half-installed.
        assert admin.execute("SELECT count(*) FROM pg_extension WHERE extname = 'mfa_auth'").fetchone()[0] == 0
        left = admin.execute("""SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'auth'::regnamespace)
                                     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'auth'::regnamespace)
                                     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'auth'::regnamespace)""").fetchone()[0]
        assert left == 0
    # Had the install gone through (0.2.0), the attack's next steps would run; they cannot now.
    with connect(db, user=role) as owner:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            owner.execute(PLANT + "SELECT * FROM auth_real.my_factors();")
    assert not is_superuser(role)
    print(f"\n  CREATE EXTENSION into {role}'s schema auth: {e.value.sqlstate} {diag.message_primary}")


def test_attack_1_as_it_worked_on_0_2_0_fails_after_a_proper_install(attacker_db):
    """The rest of the attack against an install into a schema the extension made."""
    role, db = attacker_db
    with connect(db) as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
    with connect(db, user=role) as owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute(PLANT)
        with pytest.raises(psycopg.errors.InvalidSchemaName):
            owner.execute("SET search_path = public; SELECT * FROM auth_real.my_factors()")
    assert not is_superuser(role)


def test_attack_2_a_schema_of_supabase_auth_is_refused(attacker_db):
    _, db = attacker_db
    admin_role = "supabase_auth_admin_" + uuid.uuid4().hex[:6]
    with connect("postgres") as c:
        c.execute(f"CREATE ROLE {admin_role} NOLOGIN")
    try:
        with connect(db) as admin:
            admin.execute(f"CREATE SCHEMA auth AUTHORIZATION {admin_role}")
            admin.execute(f"SET ROLE {admin_role}")
            admin.execute("CREATE TABLE auth.users (id uuid PRIMARY KEY)")
            admin.execute("CREATE TABLE auth.mfa_factors (id uuid PRIMARY KEY, user_id uuid REFERENCES auth.users)")
            admin.execute("RESET ROLE")
            with pytest.raises(psycopg.errors.DuplicateSchema) as e:
                admin.execute("CREATE EXTENSION mfa_auth")
            assert "Supabase Auth" in e.value.diag.message_hint
            assert admin.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'auth'::regnamespace "
                                 "AND relkind = 'r'").fetchone()[0] == 2  # its tables untouched
            admin.execute("DROP SCHEMA auth CASCADE")
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP ROLE {admin_role}")


def test_a_superusers_empty_schema_is_accepted(attacker_db):
    """What pg_dump/pg_restore does (CREATE SCHEMA auth, then CREATE EXTENSION): a superuser's
    empty schema with no CREATE for anyone else is as good as one the extension makes."""
    _, db = attacker_db
    with connect(db) as admin:
        admin.execute("CREATE SCHEMA auth")
        admin.execute("CREATE EXTENSION mfa_auth")
        assert admin.execute("SELECT extversion FROM pg_extension WHERE extname = 'mfa_auth'").fetchone()[0]
        admin.execute("DROP EXTENSION mfa_auth")
        admin.execute("DROP SCHEMA auth")
        # ...but not one where another role may create objects.
        admin.execute("CREATE SCHEMA auth")
        admin.execute("GRANT CREATE ON SCHEMA auth TO PUBLIC")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            admin.execute("CREATE EXTENSION mfa_auth")
        assert "CREATE" in e.value.diag.message_primary


ATTEMPTS = {
    "rename the schema": "ALTER SCHEMA auth RENAME TO auth_real",
    "take the schema": "ALTER SCHEMA auth OWNER TO CURRENT_USER",
    "drop the schema": "DROP SCHEMA auth CASCADE",
    "add a table": "CREATE TABLE auth.planted (id int)",
    "add a view": "CREATE VIEW auth.mfa_factors_v AS SELECT 1",
    "add an overload": "CREATE FUNCTION auth.session_aal(session_id uuid, user_id text) RETURNS text LANGUAGE sql AS $$ SELECT 'aal2' $$",
    "replace auth.uid()": "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS $$ SELECT NULL::uuid $$",
    "rename auth.uid()": "ALTER FUNCTION auth.uid() RENAME TO uid_real",
    "rename a table": "ALTER TABLE auth.mfa_amr_claims RENAME TO claims_real",
    "move a table": "ALTER TABLE auth.mfa_amr_claims SET SCHEMA public",
    "re-point the claims view": "CREATE OR REPLACE VIEW auth.mfa_verified_claims AS SELECT * FROM auth.mfa_amr_claims",
    "add an operator": "CREATE OPERATOR auth.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = uuid_eq)",
    "add a type": "CREATE TYPE auth.aal_level2 AS ENUM ('aal2')",
    "a second schema auth": "CREATE SCHEMA auth",
}


def test_attack_3_the_database_owner_cannot_re_point_the_schema(attacker_db):
    role, db = attacker_db
    with connect(db) as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
        owner_of = admin.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'auth'").fetchone()[0]
    refused = {}
    with connect(db, user=role) as owner:
        for what, statement in ATTEMPTS.items():
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.DuplicateSchema)) as e:
                owner.execute(statement)
            refused[what] = e.value.sqlstate
        # GRANT on a schema one does not own grants nothing.
        owner.execute("GRANT CREATE ON SCHEMA auth TO PUBLIC")
        assert owner.execute("SELECT has_schema_privilege(%s, 'auth', 'CREATE')", (role,)).fetchone()[0] is False
        # A search_path of one's own does not reach inside the SECURITY DEFINER functions.
        owner.execute("CREATE SCHEMA mine")
        owner.execute("CREATE FUNCTION mine.uid() RETURNS uuid LANGUAGE sql AS $$ SELECT gen_random_uuid() $$")
        owner.execute("SET search_path = mine, auth, public")
        assert owner.execute("SELECT count(*) FROM auth.my_factors()").fetchone()[0] == 0
    assert not is_superuser(role)
    assert owner_of == "postgres"
    print(f"\n  refused for the database owner: {len(refused)} attempts, "
          + ", ".join(f"{w} ({s})" for w, s in refused.items()))
    assert set(refused.values()) <= {"42501", "42P06"}


def test_attack_4_a_schema_handed_to_another_role_stops_the_library(attacker_db):
    role, db = attacker_db
    with connect(db) as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
        fid = admin.execute("SELECT factor_id FROM auth.enroll_totp(gen_random_uuid())").fetchone()[0]
        admin.execute(f"ALTER SCHEMA auth OWNER TO {role}")
    try:
        with connect(db) as fresh:  # a new backend checks before its first statement
            for statement in (f"SELECT auth.create_challenge('{fid}', '10.0.0.1')",
                              "SELECT auth.enroll_totp(gen_random_uuid())",
                              "SELECT auth.aal()"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                    fresh.execute(statement)
                assert 'schema "auth"' in e.value.diag.message_primary, e.value.diag.message_primary
                assert "ALTER SCHEMA auth OWNER TO" in e.value.diag.message_hint
    finally:
        with connect(db) as admin:
            admin.execute("ALTER SCHEMA auth OWNER TO postgres")
    with connect(db) as fresh:
        assert fresh.execute("SELECT count(*) FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0] == 1
