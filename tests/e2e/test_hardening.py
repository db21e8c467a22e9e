"""Hardening over real connections: brute force through ROLLBACK, the fail-closed mode of a
server that does not preload mfa_auth, and secrets encrypted at rest, with codes from
pyotp (an independent TOTP implementation)."""
import base64
import os
import time

import psycopg
import pyotp
import pytest

from conftest import ThrowawayCluster, connect, wrong_codes
from conftest import totp_now as fresh_code


def test_fifty_rollback_rounds_lock_the_factor(plain_role):
    """The attack of issue (1): `BEGIN; SELECT auth.mfa_verify(wrong); ROLLBACK;` in a
    loop, by an ordinary role through its own transactions."""
    with connect(user=plain_role) as me:
        fid, secret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
    rounds, evaluated, refused = 50, 0, 0
    with psycopg.connect(host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
                         user=plain_role, dbname="mfa_auth_e2e", autocommit=False) as attacker:
        for guess in wrong_codes(secret, rounds):
            try:
                attacker.execute("SELECT auth.mfa_verify(%s)", (guess,)).fetchone()
                evaluated += 1
            except psycopg.errors.ConfigurationLimitExceeded:
                refused += 1
            attacker.rollback()
        # Still locked, for the right code too, in a fresh autocommit session.
        with connect(user=plain_role) as me:
            with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
                me.execute("SELECT auth.mfa_verify(%s)", (fresh_code(secret),))
    with connect() as admin:
        # Every transaction rolled back: the count lives in shared memory, and the audit writer
        # writes it into the row in its own transaction (so a crash or a failover keeps it).
        t0 = time.time()
        while True:
            row = admin.execute("SELECT failed_attempts, locked_until IS NOT NULL FROM auth.mfa_factors WHERE id = %s",
                                (fid,)).fetchone()
            if row == (5, True) or time.time() - t0 > 10:
                break
            time.sleep(0.05)
    print(f"\n  rollback rounds: {rounds}, codes evaluated: {evaluated}, refused as locked: {refused}, "
          f"row after all rollbacks: failed_attempts={row[0]} locked={row[1]} ({time.time() - t0:.2f} s after the last)")
    assert (evaluated, refused) == (5, 45)
    assert row == (5, True)


def test_right_code_still_works_before_the_limit(plain_role):
    with connect(user=plain_role) as me:
        _, secret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
        for guess in ("000000", "111111"):
            me.execute("BEGIN")
            assert me.execute("SELECT auth.mfa_verify(%s)", (guess,)).fetchone()[0] in (False,)
            me.execute("ROLLBACK")
        assert me.execute("SELECT auth.mfa_verify(%s)", (fresh_code(secret),)).fetchone()[0] is True
        assert me.execute("SELECT auth.aal()").fetchone()[0] == "aal2"


# --- a server without shared_preload_libraries --------------------------------------------

@pytest.fixture(scope="module")
def unpreloaded():
    """A throwaway cluster that loads mfa_auth on demand only (no shared memory)."""
    cluster = ThrowawayCluster("mfa_auth-nopreload.")
    with cluster.connect() as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute("CREATE ROLE nopreload LOGIN")
        # A placeholder until the library loads in a backend: the definition takes it over.
        c.execute("ALTER DATABASE postgres SET mfa_auth.database_sessions = on")
    yield cluster.conn
    cluster.stop()


def test_without_preload_self_service_refuses_transaction_blocks(unpreloaded):
    with psycopg.connect(**unpreloaded) as admin:
        assert admin.execute("SELECT survives_rollback FROM auth.attempt_tracking()").fetchone()[0] is False
    user = dict(unpreloaded, user="nopreload")
    with psycopg.connect(**user) as me:
        fid, secret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        # Inside BEGIN ... (the attack): refused before any code is looked at.
        me.execute("BEGIN")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction) as e:
            me.execute("SELECT auth.mfa_verify('000000')")
        assert "not preloaded" in str(e.value) and "shared_preload_libraries" in e.value.diag.message_hint
        me.execute("ROLLBACK")
        # Inside a subtransaction (an exception block that would swallow the rollback): refused.
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            me.execute("""DO $$ BEGIN
                            BEGIN PERFORM auth.mfa_verify('000000'); EXCEPTION WHEN division_by_zero THEN NULL; END;
                          END $$""")
        # Autocommit: counted and committed; the right code works.
        assert me.execute("SELECT auth.mfa_verify('000000')").fetchone()[0] is False
        assert me.execute("SELECT auth.mfa_verify(%s)", (fresh_code(secret),)).fetchone()[0] is True
    with psycopg.connect(**unpreloaded) as admin:
        # Service functions keep working inside transactions: their caller is trusted.
        cid = admin.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
        admin.execute("BEGIN")
        assert admin.execute("SELECT auth.verify_challenge(%s, '000000')", (cid,)).fetchone()[0] is False
        admin.execute("COMMIT")
        assert admin.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0] == 1


# --- secrets at rest ----------------------------------------------------------------------

def test_stored_secret_is_sealed_and_verifies_with_an_independent_code(service_role):
    with connect(user=service_role) as app:
        fid, secret, uri, _ = app.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid(), 'app')").fetchone()
        assert pyotp.parse_uri(uri).secret == secret
        cid = app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
        assert app.execute("SELECT auth.verify_challenge(%s, %s)", (cid, fresh_code(secret))).fetchone()[0] is True
    with connect() as admin:
        stored = admin.execute("SELECT secret FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0]
        key_id, nonce, ct = stored.split(":")[1:]
    assert stored.startswith("mfa1:") and secret not in stored
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 12
    # The ciphertext is the secret's length plus the 16-byte GCM tag.
    assert len(base64.urlsafe_b64decode(ct + "=" * (-len(ct) % 4))) == len(secret) + 16


def test_the_key_is_hidden_from_ordinary_roles(plain_role):
    with connect(user=plain_role) as me:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            me.execute("SHOW mfa_auth.encryption_keys")
        assert me.execute("SELECT count(*) FROM pg_settings WHERE name LIKE 'mfa_auth.encryption%'").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            me.execute("SELECT secret FROM auth.mfa_factors")


@pytest.fixture
def without_key_file():
    """The cluster without its key file for the test (the keyfile configuration has one; the
    deprecated setting, which the test sets per session, is the only key source then)."""
    with connect() as admin:
        path = admin.execute("SELECT current_setting('mfa_auth.encryption_keys_file', true)").fetchone()[0]
        if path:
            admin.execute("ALTER SYSTEM SET mfa_auth.encryption_keys_file = ''")
            admin.execute("SELECT pg_reload_conf()")
            time.sleep(1.0)
    yield
    if path:
        with connect() as admin:
            admin.execute("ALTER SYSTEM RESET mfa_auth.encryption_keys_file")
            admin.execute("SELECT pg_reload_conf()")
            time.sleep(1.0)


def test_no_key_warns_once_and_errors_never_quote_the_key(without_key_file):
    with connect() as admin:
        notices = []
        admin.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
        admin.execute("SET mfa_auth.encryption_keys = ''")
        admin.execute("SELECT auth.enroll_totp(gen_random_uuid())")
        admin.execute("SELECT auth.enroll_totp(gen_random_uuid())")
        assert notices == [("WARNING", "no master key is configured: TOTP secrets are stored unencrypted")]
        bad = "k1:" + base64.b64encode(b"x" * 31).decode()
        admin.execute("SELECT set_config('mfa_auth.encryption_keys', %s, false)", (bad,))
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            admin.execute("SELECT auth.enroll_totp(gen_random_uuid())")
        text = str(e.value) + str(e.value.diag.message_hint) + str(e.value.diag.message_detail)
        assert bad[3:] not in text and "entry 1" in text
