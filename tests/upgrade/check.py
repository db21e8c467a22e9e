"""The data side of the upgrade test (tests/upgrade/run.sh), over real connections.

  check.py fill STATE DB       on an old release: factors, challenges, an aal2 session (and, from
                               0.2.0 on, recovery codes)
  check.py still STATE DB      after an intermediate update: rows unchanged, the session aal2
  check.py upgraded STATE DB   after ALTER EXTENSION UPDATE: the old data still works
  check.py restored STATE DB   in a database restored from the old release's dump

The version the database must be at is $EXPECT_VERSION (for fill: the old release's).

TOTP codes come from oathtool (an independent implementation). Prints what it checked; exits
non-zero (an AssertionError) when something does not hold."""
import json
import os
import subprocess
import sys
import time
import uuid

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from softkey import SoftKey  # noqa: E402 (the e2e tests' software authenticator)

RP_ID, ORIGIN = "example.org", "https://example.org"


def connect(db):
    return psycopg.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"], user="postgres", dbname=db,
                           autocommit=True)


def oathtool(secret, steps_ahead=0):
    """The code `steps_ahead` time steps from now (the window accepts one step either side),
    waiting out the end of a step so the code stays valid while it is used."""
    if 30 - time.time() % 30 < 2:
        time.sleep(30 - time.time() % 30 + 0.1)
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 30 * steps_ahead))
    padded = secret + "=" * (-len(secret) % 8)
    return subprocess.run(["oathtool", "--totp", "-b", f"--now={now} UTC", padded], check=True,
                          capture_output=True, text=True).stdout.strip()


def version(c):
    return c.execute("SELECT extversion FROM pg_extension WHERE extname = 'mfa_auth'").fetchone()[0]


def rows(c):
    """Rows of factors, challenges, claims and claim links."""
    return c.execute("""SELECT (SELECT count(*) FROM auth.mfa_factors), (SELECT count(*) FROM auth.mfa_challenges),
                               (SELECT count(*) FROM auth.mfa_amr_claims), (SELECT count(*) FROM auth.mfa_amr_claim_factors)""").fetchone()


def old_data_works(c, s):
    """On this release, the old release's rows: unchanged, the session still aal2 for its user,
    the open phone challenge (a v1 hash) and the sealed TOTP factor (an oathtool code, one step
    ahead of the one used) verifying. Returns the row counts and the session's methods."""
    assert version(c) == os.environ["EXPECT_VERSION"]
    counts = rows(c)
    assert list(counts) == s["counts"], (counts, s["counts"])
    assert c.execute("SELECT auth.session_aal(%s)::text, auth.session_aal(%s, %s)::text",
                     (s["session"], s["session"], s["user"])).fetchone() == ("aal2", "aal2")
    methods = sorted(m["method"] for m in c.execute("SELECT auth.session_amr(%s, %s)", (s["session"], s["user"])).fetchone()[0])
    # (The WebAuthn key an old release registered from the session added its claim.)
    assert methods == (["mfa/webauthn"] if s.get("key") else []) + ["password", "totp"], methods
    assert c.execute("SELECT auth.verify_challenge(%s, %s)", (s["phone_challenge"], s["phone_code"])).fetchone()[0]
    assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)",
                     (s["open_totp"], oathtool(s["secret"], 1), str(uuid.uuid4()))).fetchone()[0]
    return counts, methods


def fill(state_path, db):
    user, phone_user, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with connect(db) as c:
        old = version(c)
        assert old == os.environ["EXPECT_VERSION"], old
        factor, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s, 'phone app')", (user,)).fetchone()
        cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()[0]
        assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, oathtool(secret), session)).fetchone()[0]
        assert c.execute("SELECT auth.session_aal(%s)::text", (session,)).fetchone()[0] == "aal2"
        sealed = c.execute("SELECT secret FROM auth.mfa_factors WHERE id = %s", (factor,)).fetchone()[0]
        assert sealed.startswith("mfa1:"), "the old release sealed the secret with the configured key"
        open_totp = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()[0]
        phone = c.execute("SELECT auth.enroll_phone(%s, '+14155552671')", (phone_user,)).fetchone()[0]
        phone_challenge, phone_code = c.execute(
            "SELECT challenge_id, code FROM auth.create_challenge(%s, '10.0.0.1')", (phone,)).fetchone()
        c.execute("SELECT auth.record_amr(%s, 'password')", (session,))
        recovery = key = webauthn = None
        if old != "0.1.0":  # recovery codes and WebAuthn came with 0.2.0; one code is kept unused
            codes = [r[0] for r in c.execute("SELECT auth.generate_recovery_codes(%s, %s, 4)", (user, session))]
            recovery = codes[1]
            # A WebAuthn credential registered from the aal2 session (a software key: its private
            # key goes into the state file, to sign in after the update).
            c.execute(f"SET mfa_auth.webauthn_rp_id = '{RP_ID}'")
            c.execute(f"SET mfa_auth.webauthn_origins = '{ORIGIN}'")
            softkey = SoftKey()
            webauthn = c.execute("SELECT auth.enroll_webauthn(%s, 'old key')", (user,)).fetchone()[0]
            wid, options = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')",
                                     (webauthn,)).fetchone()
            assert c.execute("SELECT auth.verify_webauthn(%s, %s::jsonb, NULL, %s)",
                             (wid, json.dumps(softkey.create(options, ORIGIN)), session)).fetchone()[0]
            key = softkey.saved()
        counts = rows(c)
    state = dict(user=str(user), session=str(session), factor=str(factor), secret=secret, open_totp=str(open_totp),
                 phone=str(phone), phone_challenge=str(phone_challenge), phone_code=phone_code, counts=list(counts),
                 recovery=recovery, webauthn=webauthn and str(webauthn), key=key)
    with open(state_path, "w") as f:
        json.dump(state, f)
    print(f"  {old}: TOTP factor verified (session aal2), an open TOTP challenge, a phone factor with an open "
          f"challenge{', 4 recovery codes, a registered WebAuthn key' if recovery else ''}; "
          f"rows factors/challenges/claims/links = {counts}")


def still(state_path, db):
    s = json.load(open(state_path))
    with connect(db) as c:
        assert version(c) == os.environ["EXPECT_VERSION"]
        assert list(rows(c)) == s["counts"]
        assert c.execute("SELECT auth.session_aal(%s, %s)::text", (s["session"], s["user"])).fetchone()[0] == "aal2"
    print(f"  at {os.environ['EXPECT_VERSION']}: rows unchanged {tuple(s['counts'])}, the session still aal2")


def upgraded(state_path, db):
    s = json.load(open(state_path))
    with connect(db) as c:
        counts, methods = old_data_works(c, s)
        # The new API works on the old data: attempt_tracking's new column, and a WebAuthn factor
        # of an old user (new columns, create_challenge's webauthn column), removed again.
        assert c.execute("SELECT refusals >= 0 FROM auth.attempt_tracking()").fetchone()[0]
        if s.get("recovery"):  # a recovery code of the old release recovers a new session
            later = str(uuid.uuid4())
            assert c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)",
                             (s["user"], s["recovery"], later)).fetchone()[0]
            assert c.execute("SELECT auth.session_aal(%s, %s)::text", (later, s["user"])).fetchone()[0] == "aal2"
            print("  an unused recovery code of the old release recovered a new session to aal2")
        c.execute(f"SET mfa_auth.webauthn_rp_id = '{RP_ID}'")
        c.execute(f"SET mfa_auth.webauthn_origins = '{ORIGIN}'")
        if s.get("key"):  # the WebAuthn key registered on the old release signs a new session in
            softkey, later = SoftKey(s["key"]), str(uuid.uuid4())
            wid, options = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')",
                                     (s["webauthn"],)).fetchone()
            assert c.execute("SELECT auth.verify_webauthn(%s, %s::jsonb, NULL, %s)",
                             (wid, json.dumps(softkey.get(options, ORIGIN)), later)).fetchone()[0]
            assert c.execute("SELECT auth.session_aal(%s, %s)::text", (later, s["user"])).fetchone()[0] == "aal2"
            print("  the WebAuthn key registered on the old release signed a new session in to aal2")
        user = c.execute("SELECT user_id FROM auth.mfa_factors LIMIT 1").fetchone()[0]
        w = c.execute("SELECT auth.enroll_webauthn(%s, 'key')", (user,)).fetchone()[0]
        kind = c.execute("SELECT webauthn->>'type' FROM auth.create_challenge(%s, '10.0.0.1')", (w,)).fetchone()[0]
        assert kind == "create", kind
        c.execute("SELECT auth.unenroll_factor(%s)", (w,))
        # Recovery codes for the old user, from the session 0.1.0 made aal2; one recovers a new
        # session; then they are deleted again (the row counts above stay the old data's).
        codes = [r[0] for r in c.execute("SELECT auth.generate_recovery_codes(%s, %s, 4)", (s["user"], s["session"]))]
        later = str(uuid.uuid4())
        assert c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)", (s["user"], codes[0], later)).fetchone()[0]
        assert c.execute("SELECT auth.session_aal(%s, %s)::text", (later, s["user"])).fetchone()[0] == "aal2"
        c.execute("SELECT auth.delete_recovery_codes(%s)", (s["user"],))
        assert c.execute("SELECT auth.session_aal(%s, %s)::text", (later, s["user"])).fetchone()[0] == "aal1"
    print(f"  upgraded: rows unchanged {tuple(counts)}; session still aal2 {methods}; the open phone challenge "
          f"and the sealed TOTP factor (oathtool code) verify; "
          f"a WebAuthn factor and recovery codes (generated from the old aal2 session, one recovering a new session) work for the old user")


def restored(state_path, db):
    s = json.load(open(state_path))
    with connect(db) as c:
        counts, methods = old_data_works(c, s)
    print(f"  restored from the old release's dump into {os.environ['EXPECT_VERSION']}: rows {tuple(counts)}; "
          f"session aal2 {methods}; factors verify")


if __name__ == "__main__":
    {"fill": fill, "still": still, "upgraded": upgraded, "restored": restored}[sys.argv[1]](sys.argv[2], sys.argv[3])
