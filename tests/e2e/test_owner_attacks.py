"""A database owner who is not a superuser attacks every SQL text the extension runs (found by
a review of 0.3.0): the owner sets a search_path for the database that puts a schema of theirs
before pg_catalog, with look-alike types (domains whose CHECK runs the owner's code), operators
and functions. Whoever then runs one of the extension's statements in that database runs the
owner's code as themselves: the audit writer as the bootstrap superuser (0.3.0: the owner made
itself superuser), a superuser calling auth.aal() or CALL auth.cleanup_challenges_batched().

And the owner's other ways to reach the audit writer through ALTER DATABASE ... SET: running it
as their own role, read-only, under tiny timeouts (0.3.0: the trail went silent, nothing
recorded, nothing counted as lost).

Every statement of these tests that runs with the owner's search_path is free of names to
hijack (parameters are sent typed); the checks read through connections that set their own."""
import time
import uuid

import psycopg
import pytest

from conftest import connect, wrong_codes

# Type names the grammar does not resolve itself (int, bigint, boolean, interval, numeric,
# varchar, timestamp... are keywords it maps to pg_catalog directly).
TYPES = ["text", "int2", "int4", "int8", "bool", "float8", "uuid", "jsonb", "json", "inet", "name", "oid",
         "regclass", "regtype", "regrole", "regproc", "bytea", "tid", "date", "timestamptz", "xid", "char"]
OPERATORS = [(op, t) for t in ("text", "uuid", "int4", "int8", "name", "oid", "timestamptz", "bool")
             for op in ("=", "<>", "<", ">", "<=", ">=")] + [("||", "text")]
FUNCTIONS = [("now", "", "pg_catalog.timestamptz", "pg_catalog.now()"),
             ("clock_timestamp", "", "pg_catalog.timestamptz", "pg_catalog.clock_timestamp()"),
             ("gen_random_uuid", "", "pg_catalog.uuid", "pg_catalog.gen_random_uuid()"),
             ("to_regclass", "pg_catalog.text", "pg_catalog.regclass", "pg_catalog.to_regclass($1)"),
             ("lower", "pg_catalog.text", "pg_catalog.text", "pg_catalog.lower($1)"),
             ("length", "pg_catalog.text", "pg_catalog.int4", "pg_catalog.length($1)"),
             ("current_database", "", "pg_catalog.name", "pg_catalog.current_database()"),
             ("format", "pg_catalog.text", "pg_catalog.text", "pg_catalog.format($1)")]


def trap_sql(owner):
    """The owner's schema `evil`: every look-alike runs evil.pwn(), which counts itself in a
    sequence (not undone by a rollback), warns, and, when it runs as a superuser, makes the
    owner one."""
    out = [f"""
    CREATE SCHEMA evil;
    GRANT USAGE ON SCHEMA evil TO PUBLIC;
    CREATE SEQUENCE evil.shots;
    GRANT USAGE, UPDATE, SELECT ON SEQUENCE evil.shots TO PUBLIC;
    CREATE TABLE evil.fired (who pg_catalog.text, what pg_catalog.text);
    GRANT INSERT, SELECT ON evil.fired TO PUBLIC;
    CREATE FUNCTION evil.pwn(what pg_catalog.text) RETURNS pg_catalog.bool
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
    BEGIN
        BEGIN
            RAISE WARNING 'evil.pwn ran as % for %', current_user, what;
            PERFORM pg_catalog.nextval('evil.shots');
            INSERT INTO evil.fired VALUES (current_user, what);
        EXCEPTION WHEN OTHERS THEN RAISE WARNING 'evil.pwn could not count itself: %', SQLERRM;
        END;
        IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            BEGIN
                EXECUTE 'ALTER ROLE {owner} SUPERUSER';
            EXCEPTION WHEN OTHERS THEN RAISE WARNING 'evil.pwn: %', SQLERRM;
            END;
        END IF;
        RETURN true;
    END $$;
    """]
    for t in TYPES:
        out.append(f'CREATE DOMAIN evil."{t}" AS pg_catalog."{t}" CHECK (evil.pwn(\'::{t}\'));')
    for op, t in OPERATORS:
        impl = {"=": "eq", "<>": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge", "||": "cat"}[op]
        ret = "pg_catalog.text" if op == "||" else "pg_catalog.bool"
        out.append(f"""
        CREATE FUNCTION evil.op_{impl}_{t}(a pg_catalog."{t}", b pg_catalog."{t}") RETURNS {ret}
        LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.pwn('{op} on {t}'); RETURN a OPERATOR(pg_catalog.{op}) b; END $$;
        CREATE OPERATOR evil.{op} (LEFTARG = pg_catalog."{t}", RIGHTARG = pg_catalog."{t}", FUNCTION = evil.op_{impl}_{t});
        """)
    for name, args, ret, body in FUNCTIONS:
        params = "a " + args if args else ""
        call = body.replace("$1", "a")
        out.append(f"""
        CREATE FUNCTION evil.{name}({params}) RETURNS {ret}
        LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.pwn('function {name}'); RETURN {call}; END $$;
        """)
    out.append("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA evil TO PUBLIC;")
    return "\n".join(out)


# A connection that reads what happened without meeting the trap itself.
SAFE = ("-c search_path=pg_catalog,public -c role=none -c default_transaction_read_only=off -c statement_timeout=0"
        " -c lock_timeout=0 -c idle_in_transaction_session_timeout=0")


@pytest.fixture(scope="module")
def tenant():
    """A database owned by a non-superuser LOGIN role, the extension created by a superuser, the
    owner's trap set and the owner's search_path made the database's default."""
    suffix = uuid.uuid4().hex[:8]
    owner, db = f"dbo_{suffix}", f"tenant_{suffix}"
    with connect("postgres") as c:
        c.execute(f"CREATE ROLE {owner} LOGIN")
        c.execute(f"CREATE DATABASE {db} OWNER {owner}")
    with connect(db) as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.database_sessions = on")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.webauthn_rp_id = 'example.com'")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.webauthn_origins = 'https://app.example.com'")
    with connect(db, user=owner) as o:
        o.execute(trap_sql(owner))
        o.execute(f"ALTER DATABASE {db} SET search_path = evil, pg_catalog, public")
    yield owner, db
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        c.execute(f"DROP OWNED BY {owner}")
        c.execute(f"DROP ROLE IF EXISTS {owner}")


def shots(db):
    """How often the owner's code ran (the sequence survives rollbacks) and as whom."""
    with connect(db, options=SAFE) as c:
        last, called = c.execute("SELECT last_value, is_called FROM evil.shots").fetchone()
        who = c.execute("SELECT who, what FROM evil.fired ORDER BY 1, 2").fetchall()
        return (last if called else 0), who


def is_superuser(role):
    with connect("postgres") as c:
        return c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]


def victim(db, user=None, options=None):
    """A connection under the database's defaults (the owner's search_path), recording the
    server's warnings (evil.pwn warns when it runs)."""
    c = connect(db, user=user, **({"options": options} if options else {}))
    c.warnings = []
    c.add_notice_handler(lambda d: c.warnings.append(d.message_primary) if "evil.pwn" in (d.message_primary or "") else None)
    assert "evil" in c.execute("SHOW search_path").fetchone()[0]
    return c


def audit_rows(db, factor, event="verification", wait_for=1, timeout=10.0):
    deadline = time.time() + timeout
    with connect(db, options=SAFE) as c:
        while True:
            found = c.execute("SELECT event, outcome FROM auth.mfa_audit_log WHERE factor_id = %s AND event = %s",
                              (factor, event)).fetchall()
            if len(found) >= wait_for or time.time() > deadline:
                return found
            time.sleep(0.1)


def wait_no_writer(db, timeout=15.0):
    """Until no audit writer runs (an idle one stops after 2 s), so that the next event
    starts one that reads the database's current settings."""
    deadline = time.time() + timeout
    with connect(db, options=SAFE) as c:
        while c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer'").fetchone()[0]:
            assert time.time() < deadline, "an audit writer kept running"
            time.sleep(0.1)


def test_attack_1_the_audit_writer_runs_none_of_the_owners_code(tenant):
    owner, db = tenant
    from conftest import PRELOADED
    if not PRELOADED:
        pytest.skip("without the library preloaded there is no audit writer")
    wait_no_writer(db)
    with victim(db) as v:
        fid, secret = v.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (uuid.uuid4(),)).fetchone()
        cid = v.execute("SELECT challenge_id FROM auth.create_challenge(%s, %s)", (fid, "192.0.2.1")).fetchone()[0]
        assert v.execute("SELECT auth.verify_challenge(%s, %s, %s)", (cid, wrong_codes(secret, 1)[0], "192.0.2.1")).fetchone()[0] is False
    found = audit_rows(db, fid)
    count, who = shots(db)
    print(f"\n  the writer of the owner's database wrote {found}; the owner's code ran {count} times {who}; "
          f"owner is superuser: {is_superuser(owner)}")
    assert found == [("verification", "failure")]
    assert not is_superuser(owner)
    assert count == 0, who


SESSION_CALLS = [
    "SELECT auth.aal()", "SELECT auth.aal_next()", "SELECT auth.mfa_satisfied()", "SELECT auth.amr()",
    "SELECT auth.uid()", "SELECT auth.session_id()", "SELECT auth.mfa_verified_within(interval '1 hour')",
    "SELECT auth.role_user_id()",
]
MAINTENANCE_CALLS = [
    "CALL auth.cleanup_challenges_batched()", "CALL auth.cleanup_challenges_batched(interval '1 second', 10)",
    "CALL auth.rotate_secrets_batched()", "CALL auth.rotate_secrets_batched(10)",
    "SELECT auth.cleanup_challenges()", "SELECT auth.cleanup_audit_log()", "SELECT * FROM auth.audit_status()",
    "SELECT * FROM auth.attempt_tracking()", "SELECT auth.rotate_secrets()",
]


def test_attack_2_no_call_runs_the_owners_code(tenant):
    """Every kind of call, each in a new connection (the library's once-per-backend checks
    included): a superuser's session functions, maintenance procedures and service calls, and
    an ordinary role's self-service."""
    owner, db = tenant
    ran = []

    def call(sql, args=(), user=None, expect=None):
        with victim(db, user=user) as v:
            try:
                v.execute(sql, args)
            except psycopg.Error as e:
                if expect is None or not isinstance(e, expect):
                    raise
            if v.warnings:
                ran.append((sql, v.warnings))

    for sql in SESSION_CALLS + MAINTENANCE_CALLS:
        call(sql)
    # The service flow as a superuser: TOTP, recovery codes, phone, WebAuthn, claims, unenroll.
    user, session = uuid.uuid4(), uuid.uuid4()
    with victim(db) as v:
        fid, secret = v.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s, %s)", (user, "laptop")).fetchone()
        cid = v.execute("SELECT challenge_id FROM auth.create_challenge(%s, %s)", (fid, "192.0.2.1")).fetchone()[0]
        import pyotp
        assert v.execute("SELECT auth.verify_challenge(%s, %s, %s, %s)",
                         (cid, pyotp.TOTP(secret).now(), "192.0.2.1", session)).fetchone()[0] is True
        v.execute("SELECT auth.create_challenge(%s, %s)", (fid, "192.0.2.1"))
        assert v.execute("SELECT auth.verify_factor(%s, %s, %s, %s)",
                         (fid, wrong_codes(secret, 1)[0], "192.0.2.1", session)).fetchone()[0] is False
        v.execute("SELECT auth.record_amr(%s, %s)", (session, "password"))
        v.execute("SELECT auth.session_aal(%s), auth.session_amr(%s), auth.session_aal(%s, %s)", (session, session, session, user))
        codes = v.execute("SELECT array_agg(c) FROM auth.generate_recovery_codes(%s, %s) c", (user, session)).fetchone()[0]
        v.execute("SELECT * FROM auth.recovery_codes_status(%s)", (user,))
        assert v.execute("SELECT auth.verify_recovery_code(%s, %s, %s, %s)", (user, codes[0], "192.0.2.1", uuid.uuid4())).fetchone()[0]
        v.execute("SELECT auth.aal_next(%s)", (user,))
        pid = v.execute("SELECT auth.enroll_phone(%s, %s)", (user, "+15555550100")).fetchone()[0]
        v.execute("SELECT * FROM auth.create_challenge(%s, %s)", (pid, "192.0.2.1"))
        wid = v.execute("SELECT auth.enroll_webauthn(%s, %s)", (user, "key")).fetchone()[0]
        v.execute("SELECT auth.unlock_factor(%s)", (fid,))
        v.execute("SELECT auth.delete_recovery_codes(%s)", (user,))
        for f in (pid, wid, fid):
            v.execute("SELECT auth.unenroll_factor(%s)", (f,))
        if v.warnings:
            ran.append(("the service flow", v.warnings))
    # Self-service as an ordinary role (database sessions are on in this database).
    role = "selfie_" + uuid.uuid4().hex[:8]
    with connect("postgres") as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with victim(db, user=role) as v:
            fid, secret = v.execute("SELECT factor_id, secret FROM auth.enroll_my_totp(%s)", ("phone",)).fetchone()
            assert v.execute("SELECT auth.mfa_verify(%s, %s)", (pyotp.TOTP(secret).now(), fid)).fetchone()[0] is True
            v.execute("SELECT * FROM auth.my_factors()")
            v.execute("SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied(), auth.amr()")
            v.execute("SELECT array_agg(c) FROM auth.generate_my_recovery_codes() c")
            v.execute("SELECT * FROM auth.my_recovery_codes_status()")
            assert v.execute("SELECT auth.mfa_verify_recovery_code(%s)", ("aaaa-bbbb",)).fetchone()[0] is False
            v.execute("SELECT auth.unenroll_my_factor(%s)", (fid,))
            if v.warnings:
                ran.append(("self-service", v.warnings))
    finally:
        with connect("postgres") as c:
            c.execute(f"DROP ROLE {role}")
    count, who = shots(db)
    print(f"\n  {len(SESSION_CALLS) + len(MAINTENANCE_CALLS)} calls, the service flow and self-service in the owner's "
          f"database: the owner's code ran {count} times {who}; warnings: {ran}")
    assert not is_superuser(owner)
    assert (count, ran) == (0, [])


def test_attack_3_the_owner_cannot_silence_the_writer(tenant):
    """ALTER DATABASE ... SET role (the owner's role: no right to write the trail), read-only
    transactions and tiny timeouts reach the writer in 0.3.0 (0 of 5 events written, none
    counted as lost). The writer's environment is its own: all 5 are written."""
    owner, db = tenant
    from conftest import PRELOADED
    if not PRELOADED:
        pytest.skip("without the library preloaded there is no audit writer")
    settings = {"role": owner, "default_transaction_read_only": "on", "statement_timeout": "1",
                "lock_timeout": "1", "default_transaction_isolation": "'serializable'",
                "idle_in_transaction_session_timeout": "1", "synchronous_commit": "off", "work_mem": "64",
                "client_min_messages": "error", "check_function_bodies": "off", "row_security": "off"}
    with connect(db, user=owner) as o:
        for k, v in settings.items():
            o.execute(f"ALTER DATABASE {db} SET {k} = {v}")
    try:
        wait_no_writer(db)
        # The victim (the application, a superuser here) overrides what would stop it.
        with victim(db, options="-c role=none -c default_transaction_read_only=off -c statement_timeout=0 -c lock_timeout=0") as v:
            fid, secret = v.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (uuid.uuid4(),)).fetchone()
            for code in wrong_codes(secret, 5):
                cid = v.execute("SELECT challenge_id FROM auth.create_challenge(%s, %s)", (fid, "192.0.2.3")).fetchone()[0]
                assert v.execute("SELECT auth.verify_challenge(%s, %s, %s)", (cid, code, "192.0.2.3")).fetchone()[0] is False
        found = audit_rows(db, fid, wait_for=5)
        with connect(db, options=SAFE) as c:
            lost = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event = 'audit_events_lost'").fetchone()[0]
            writer = c.execute("SELECT usename FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer' AND datname = %s",
                               (db,)).fetchall()
        print(f"\n  with the owner's {sorted(settings)}: {len(found)} of 5 failures written, {lost} loss rows, writer {writer}")
        assert len(found) == 5
        assert shots(db)[0] == 0
    finally:
        with connect(db, user=owner, options=SAFE) as o:
            for k in settings:
                o.execute(f"ALTER DATABASE {db} RESET {k}")


def test_the_owner_cannot_reach_the_extensions_settings_tables_or_schema(tenant):
    """What held in the review, kept: the owner sets no mfa_auth.* setting (the trail's three:
    test_no_role_but_a_superuser_switches_off_or_shortens_the_trail, below), writes and reads
    none of the extension's tables, and creates nothing in schema auth."""
    owner, db = tenant
    attempts = [f"ALTER DATABASE {db} SET mfa_auth.max_failed_attempts = 1000000",
                "SET mfa_auth.max_failed_attempts = 1000000",
                "INSERT INTO auth.mfa_audit_log (id, event) VALUES (pg_catalog.gen_random_uuid(), 'x')",
                "DELETE FROM auth.mfa_audit_log",
                "TRUNCATE auth.mfa_audit_log",
                "LOCK TABLE auth.mfa_audit_log IN ACCESS EXCLUSIVE MODE",
                "SELECT secret FROM auth.mfa_factors",
                "UPDATE auth.mfa_factors SET failed_attempts = 0",
                "CREATE TABLE auth.planted (x pg_catalog.int4)",
                "ALTER SCHEMA auth OWNER TO CURRENT_USER"]
    outcome = {}
    with connect(db, user=owner, options=SAFE) as o:
        for sql in attempts:
            try:
                with o.transaction():   # LOCK TABLE needs one
                    o.execute(sql)
                outcome[sql] = "ran"
            except psycopg.Error as e:
                outcome[sql] = e.sqlstate
    print(f"\n  as the database's owner, SQLSTATE of each of {len(attempts)} attempts: {outcome}")
    refused = dict.fromkeys(attempts, "42501")
    assert outcome == refused, {k: v for k, v in outcome.items() if v != refused[k]}


def owner_sets(owner, db, setting, literal, pgoptions, more=()):
    """The database's owner sets `setting` to `literal` in every way a role can: for its session
    (SET, SET LOCAL, set_config both ways), for itself (ALTER ROLE, also IN DATABASE), for the
    database (ALTER DATABASE), the `more` statements, and at connect (PGOPTIONS, `-c
    setting=pgoptions`). Returns each attempt's outcome (SQLSTATE, "ran", or "refused: ..." at
    connect) and the value the owner's session saw after its attempts."""
    outcome = {}
    with connect(db, user=owner, options=SAFE) as o:
        for sql in (f"SET {setting} = {literal}", f"SET LOCAL {setting} = {literal}",
                    f"SELECT pg_catalog.set_config('{setting}', {quote(literal)}, false)",
                    f"SELECT pg_catalog.set_config('{setting}', {quote(literal)}, true)",
                    f"ALTER ROLE {owner} SET {setting} = {literal}", f"ALTER DATABASE {db} SET {setting} = {literal}",
                    f"ALTER ROLE {owner} IN DATABASE {db} SET {setting} = {literal}", *more):
            try:
                with o.transaction():
                    o.execute(sql)
                outcome[sql] = "ran"
            except psycopg.Error as e:
                outcome[sql] = e.sqlstate
        now = o.execute(f"SHOW {setting}").fetchone()[0]
    # At connect (PGOPTIONS / the startup packet): refused before the session exists.
    try:
        with connect(db, user=owner, options=f"{SAFE} -c {setting}={pgoptions}") as p:
            outcome["PGOPTIONS"] = "ran: " + p.execute(f"SHOW {setting}").fetchone()[0]
    except psycopg.OperationalError as e:
        outcome["PGOPTIONS"] = "refused: " + str(e).strip().splitlines()[-1].split("FATAL:")[-1].strip()[:160]
    return outcome, now


def quote(literal):
    """A setting's value as a string literal (it may be one already)."""
    return literal if literal.startswith("'") else "'" + literal + "'"


@pytest.mark.parametrize("setting,value", [("mfa_auth.audit", "off"), ("mfa_auth.audit_log_server", "off"),
                                           ("mfa_auth.audit_retention", "1")])
def test_no_role_but_a_superuser_switches_off_or_shortens_the_trail(tenant, setting, value):
    """What decides what the trail records, in every way a role can set a setting: for its
    session (SET, SET LOCAL, set_config, PGOPTIONS at connect), for itself (ALTER ROLE) and for
    the database it owns (ALTER DATABASE). Each is refused for the database's owner, and the
    setting keeps its value; the superuser-only ones with 42501, the server-wide (sighup) ones
    with 55P02."""
    owner, db = tenant
    sighup = setting != "mfa_auth.audit"
    with connect(db) as c:
        before = c.execute(f"SHOW {setting}").fetchone()[0]
    outcome, now = owner_sets(owner, db, setting, value, value)
    with connect(db) as c:
        after = c.execute(f"SHOW {setting}").fetchone()[0]
        stored = c.execute("SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) AS cfg WHERE cfg LIKE %s",
                           (setting + "=%",)).fetchone()[0]
    print(f"\n  {setting} = {value} as the database's owner: {outcome}; value {before} -> {after}, {stored} stored settings")
    want = "55P02" if sighup else "42501"
    session = {k: v for k, v in outcome.items() if k != "PGOPTIONS"}
    assert session == {k: want for k in session}, session
    assert outcome["PGOPTIONS"].startswith("refused:") and "permission denied" in outcome["PGOPTIONS"] \
        or (sighup and "cannot be changed now" in outcome["PGOPTIONS"]), outcome["PGOPTIONS"]
    assert after == before == now and stored == 0


@pytest.mark.parametrize("setting,value", [("mfa_auth.verification_hook", ""), ("mfa_auth.verification_hook", "evil.hook"),
                                           ("mfa_auth.enrollment_hook", ""), ("mfa_auth.reverify_window", "0")])
def test_no_role_but_a_superuser_sets_or_clears_a_hook(tenant, setting, value):
    """The policy hooks and the re-verification window, set by a superuser for the database,
    attacked by its owner in every way a role can set a setting: cleared (the policy switched
    off), or pointed at a function of the owner's (which would run as the owner, deciding for
    everyone). Each is refused with 42501 and the value is kept."""
    owner, db = tenant
    with connect(db, options=SAFE) as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS policy")
        c.execute("""CREATE OR REPLACE FUNCTION policy.decide(event jsonb) RETURNS jsonb LANGUAGE sql
                     AS $$ SELECT '{"decision": "continue"}'::pg_catalog.jsonb $$""")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.verification_hook = 'policy.decide'")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.enrollment_hook = 'policy.decide'")
        c.execute(f"ALTER DATABASE {db} SET mfa_auth.reverify_window = '5min'")
    with connect(db, user=owner, options=SAFE) as o:
        o.execute("""CREATE OR REPLACE FUNCTION evil.hook(event jsonb) RETURNS jsonb LANGUAGE sql
                     AS $$ SELECT '{"decision": "continue"}'::pg_catalog.jsonb $$""")
    try:
        with connect(db, options=SAFE) as c:
            before = c.execute(f"SHOW {setting}").fetchone()[0]
        outcome, now = owner_sets(owner, db, setting, "'" + value + "'", value or "''",
                                  (f"RESET {setting}", f"ALTER DATABASE {db} RESET {setting}"))
        with connect(db, options=SAFE) as c:
            after = c.execute(f"SHOW {setting}").fetchone()[0]
            stored = c.execute("SELECT pg_catalog.array_agg(cfg) FROM pg_db_role_setting s, unnest(s.setconfig) AS cfg "
                               "WHERE cfg LIKE %s", (setting + "=%",)).fetchone()[0]
        print(f"\n  {setting} = {value!r} as the database's owner: {outcome}; value {before!r} -> {after!r}; stored {stored}")
        session = {k: v for k, v in outcome.items() if k != "PGOPTIONS"}
        assert session == {k: "42501" for k in session}, session
        assert outcome["PGOPTIONS"].startswith("refused:") and "permission denied" in outcome["PGOPTIONS"], outcome
        assert after == before == now and before in ("policy.decide", "5min") and len(stored) == 1
    finally:
        with connect(db, options=SAFE) as c:
            for s in ("verification_hook", "enrollment_hook", "reverify_window"):
                c.execute(f"ALTER DATABASE {db} RESET mfa_auth.{s}")
