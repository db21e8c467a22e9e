"""WebAuthn end to end: a real headless Chromium with CDP virtual authenticators answers the
options auth.create_challenge returns, and auth.verify_webauthn checks the responses.
Every response the browser produced is also checked by an independent verifier, py_webauthn
(PyPI `webauthn`), and both must give the same verdict."""
import base64
import json
import time
import uuid

import psycopg
import pytest
import webauthn as py_webauthn

from browser import Browser
from conftest import DB, connect, totp_now

ES256, EDDSA, RS256 = -7, -8, -257
VERDICTS = []


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@pytest.fixture(scope="module")
def browser(database):
    b = Browser()
    with connect("postgres") as c:
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_rp_id = 'localhost'")
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_origins = '{b.origin}'")
    yield b
    b.close()
    with connect("postgres") as c:
        c.execute(f"ALTER DATABASE {DB} RESET mfa_auth.webauthn_rp_id")
        c.execute(f"ALTER DATABASE {DB} RESET mfa_auth.webauthn_origins")
    print(f"\nWEBAUTHN {b.version}: py_webauthn gave the same verdict on {len(VERDICTS)} browser responses "
          f"({sum(1 for v in VERDICTS if v[1])} accepted, {sum(1 for v in VERDICTS if not v[1])} refused)")


@pytest.fixture
def db(browser):
    """A superuser connection opened after the relying-party settings were made. It shows
    DEBUG1 messages: a refused response logs why (`db.reasons`)."""
    with connect() as c:
        c.reasons = []
        c.add_notice_handler(lambda d: c.reasons.append(d.message_primary.split(": ", 2)[-1])
                             if "WebAuthn response rejected" in (d.message_primary or "") else None)
        c.execute("SET client_min_messages = debug1")
        yield c


def reason(db):
    """The reason of the last refusal."""
    return db.reasons[-1] if db.reasons else None


def challenge(db, factor):
    cid, options = db.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '127.0.0.1')",
                              (factor,)).fetchone()
    session_data = db.execute("SELECT web_authn_session_data FROM auth.mfa_challenges WHERE id = %s",
                              (cid,)).fetchone()[0]
    return cid, options, session_data


def stored(db, factor):
    return db.execute("SELECT web_authn_credential FROM auth.mfa_factors WHERE id = %s", (factor,)).fetchone()[0]


def failures(db, factor):
    return db.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (factor,)).fetchone()[0]


def verify(db, cid, credential, session_id=None):
    return db.execute("SELECT auth.verify_webauthn(%s, %s::jsonb, NULL, %s)",
                      (cid, json.dumps(credential), session_id)).fetchone()[0]


def py_registration(credential, session_data, origin, uv_required):
    try:
        py_webauthn.verify_registration_response(
            credential=credential, expected_challenge=b64d(session_data["challenge"]), expected_origin=origin,
            expected_rp_id="localhost", require_user_verification=uv_required)
        return True
    except Exception:
        return False


def py_authentication(credential, session_data, before, origin, uv_required):
    try:
        py_webauthn.verify_authentication_response(
            credential=credential, expected_challenge=b64d(session_data["challenge"]), expected_rp_id="localhost",
            expected_origin=origin, credential_public_key=b64d(before["public_key"]),
            credential_current_sign_count=before["sign_count"], require_user_verification=uv_required)
        return True
    except Exception:
        return False


def agree(what, ours, theirs, expected):
    VERDICTS.append((what, ours))
    assert (ours, theirs) == (expected, expected), f"{what}: mfa_auth {ours}, py_webauthn {theirs}, expected {expected}"


def register(db, browser, user, alg=ES256, name=None, session_id=None):
    factor = db.execute("SELECT auth.enroll_webauthn(%s, %s)", (user, name)).fetchone()[0]
    cid, options, session_data = challenge(db, factor)
    assert options["type"] == "create"
    credential = browser.create(options, alg=alg)
    ours = verify(db, cid, credential, session_id)
    agree(f"registration {alg}", ours, py_registration(credential, session_data, browser.origin, False), True)
    return factor, credential


def authenticate(db, browser, factor, expected=True, session_id=None, origin=None, allow=None, uv_required=False):
    cid, options, session_data = challenge(db, factor)
    assert options["type"] == "request"
    before = stored(db, factor)
    credential = browser.get(options, origin=origin, allow=allow)
    ours = verify(db, cid, credential, session_id)
    theirs = py_authentication(credential, session_data, before, browser.origin, uv_required)
    agree(f"authentication expecting {expected}", ours, theirs, expected)
    return cid, credential


@pytest.mark.parametrize("alg,transport,uv", [(ES256, "usb", True), (EDDSA, "internal", True), (RS256, "usb", False)],
                         ids=["ES256-usb-uv", "EdDSA-internal-uv", "RS256-usb-no-uv"])
def test_register_then_authenticate_several_times(db, browser, alg, transport, uv):
    browser.authenticator(transport=transport, uv=uv)
    user = str(uuid.uuid4())
    factor, credential = register(db, browser, user, alg)
    status, cred, aaguid = db.execute(
        "SELECT status::text, web_authn_credential, web_authn_aaguid FROM auth.mfa_factors WHERE id = %s",
        (factor,)).fetchone()
    assert status == "verified"
    assert cred["algorithm"] == alg and cred["id"] == credential["rawId"]
    assert cred["attestation_format"] == "none" and aaguid is not None
    assert cred["user_verified"] is uv
    assert cred["transports"] == [transport]
    session = str(uuid.uuid4())
    counts = [cred["sign_count"]]
    for _ in range(3):
        authenticate(db, browser, factor, session_id=session)
        counts.append(stored(db, factor)["sign_count"])
    assert counts == sorted(set(counts)), f"the sign count increases: {counts}"
    assert db.execute("SELECT auth.session_aal(%s, %s)::text", (session, user)).fetchone()[0] == "aal2"
    amr = db.execute("SELECT auth.session_amr(%s, %s)", (session, user)).fetchone()[0]
    assert [m["method"] for m in amr] == ["mfa/webauthn"]


def test_rejections_each_counted_and_agreed(db, browser):
    browser.authenticator()
    user = str(uuid.uuid4())
    factor, _ = register(db, browser, user)

    def refused(why, **kw):
        authenticate(db, browser, factor, expected=False, **kw)
        assert why in reason(db), reason(db)
        assert failures(db, factor) == 1, "a refused response is a counted failure"
        db.execute("SELECT auth.unlock_factor(%s)", (factor,))

    # A bogus signature, then UP missing, then UV missing where it is required.
    browser.override(isBogusSignature=True)
    refused("signature does not verify")
    browser.override(isBogusSignature=False, isBadUP=True)
    refused("user presence (UP) flag not set")
    browser.override(isBadUP=False, isBadUV=True)
    db.execute("SET mfa_auth.webauthn_user_verification = 'required'")
    refused("user verification (UV) required", uv_required=True)
    browser.override(isBadUV=False)
    authenticate(db, browser, factor, uv_required=True)
    db.execute("RESET mfa_auth.webauthn_user_verification")

    # The right authenticator, from an origin that is not allowed (same RP id, other port).
    refused(f'origin "{browser.other_origin}" is not in mfa_auth.webauthn_origins', origin=browser.other_origin)

    # A replayed assertion: its own challenge is verified already (an error), and for a new
    # challenge it proves the wrong challenge (false).
    cid, credential = authenticate(db, browser, factor)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already verified"):
        verify(db, cid, credential)
    cid2, _, session_data = challenge(db, factor)
    before = stored(db, factor)
    agree("replay", verify(db, cid2, credential),
          py_authentication(credential, session_data, before, browser.origin, False), False)
    assert "challenge is not this challenge's" in reason(db)
    db.execute("SELECT auth.unlock_factor(%s)", (factor,))

    # A failed attempt uses its challenge up: a good answer to it afterwards is refused.
    cid3, options3, _ = challenge(db, factor)
    browser.override(isBogusSignature=True)
    assert verify(db, cid3, browser.get(options3)) is False
    browser.override(isBogusSignature=False)
    good = browser.get(options3)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="can no longer be answered"):
        verify(db, cid3, good)
    db.execute("SELECT auth.unlock_factor(%s)", (factor,))

    # Counter regression: the same credential put back with a lower signature counter.
    [held] = browser.credentials()
    count = stored(db, factor)["sign_count"]
    assert count >= 3
    browser.replace_credential(held, signCount=1)
    refused(f"signature counter did not increase (stored {count}, received 2)")
    assert stored(db, factor)["sign_count"] == count, "a refused assertion changes nothing"
    browser.replace_credential(held, signCount=count + 10)
    authenticate(db, browser, factor)
    assert stored(db, factor)["sign_count"] == count + 11


def test_failures_lock_the_factor_even_when_rolled_back(db, browser):
    """Refused assertions count like wrong codes: after mfa_auth.max_failed_attempts the factor
    is locked, and (the library being preloaded) a ROLLBACK does not take a failure back."""
    browser.authenticator()
    factor, _ = register(db, browser, str(uuid.uuid4()))
    browser.override(isBogusSignature=True)
    limit = int(db.execute("SHOW mfa_auth.max_failed_attempts").fetchone()[0])
    for _ in range(limit):
        cid, options, _ = challenge(db, factor)
        credential = browser.get(options)
        with db.transaction(force_rollback=True):
            assert verify(db, cid, credential) is False
    browser.override(isBogusSignature=False)
    # Each failure was rolled back in the caller's transaction and still counted (shared
    # memory); the audit writer writes the count and the lock into the row in its own
    # transaction (tests/e2e/test_durable_counts.py), waited for here.
    t0 = time.time()
    while failures(db, factor) != limit and time.time() - t0 < 10:
        time.sleep(0.05)
    assert db.execute("SELECT failed_attempts, locked_until > now() FROM auth.mfa_factors WHERE id = %s",
                      (factor,)).fetchone() == (limit, True)
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
        challenge(db, factor)  # the factor is locked
    db.execute("SELECT auth.unlock_factor(%s)", (factor,))
    authenticate(db, browser, factor)


def test_expired_challenge_is_refused(db, browser):
    browser.authenticator()
    factor, _ = register(db, browser, str(uuid.uuid4()))
    db.execute("SET mfa_auth.challenge_expiry = 1")
    cid, options, _ = challenge(db, factor)
    credential = browser.get(options)
    time.sleep(1.3)
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification, match="expired"):
        verify(db, cid, credential)
    db.execute("RESET mfa_auth.challenge_expiry")
    assert failures(db, factor) == 0


def test_another_factors_credential_is_refused(db, browser):
    browser.authenticator()
    factor_a, _ = register(db, browser, str(uuid.uuid4()))
    browser.authenticator()
    _, credential_b = register(db, browser, str(uuid.uuid4()))
    # The browser answers A's challenge with B's credential (B's authenticator is the one present).
    authenticate(db, browser, factor_a, expected=False, allow=credential_b["rawId"])
    assert reason(db) == "credential is not this factor's"
    assert failures(db, factor_a) == 1


def test_second_factor_needs_an_aal2_session(db, browser):
    """The trust model: once a user has a verified factor, registering a WebAuthn factor needs
    a session that is aal2 for that user; with one, the new factor gives aal2 on its own."""
    browser.authenticator()
    user = str(uuid.uuid4())
    totp_factor, secret = db.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (user,)).fetchone()
    first = str(uuid.uuid4())
    cid = db.execute("SELECT challenge_id FROM auth.create_challenge(%s, '127.0.0.1')", (totp_factor,)).fetchone()[0]
    assert db.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, totp_now(secret), first)).fetchone()[0]
    factor = db.execute("SELECT auth.enroll_webauthn(%s, 'key')", (user,)).fetchone()[0]
    cid, options, _ = challenge(db, factor)
    credential = browser.create(options)
    for session in (None, str(uuid.uuid4())):  # no session; a password-only (aal1) session
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="aal2 session is required"):
            verify(db, cid, credential, session)
    assert failures(db, factor) == 0
    assert verify(db, cid, credential, first) is True
    later = str(uuid.uuid4())
    authenticate(db, browser, factor, session_id=later)
    assert db.execute("SELECT auth.session_aal(%s, %s)::text", (later, user)).fetchone()[0] == "aal2"


def test_self_service_in_a_database_session(db, browser, plain_role):
    """psql-style self-service (mfa_auth.database_sessions is on for the test database)."""
    browser.authenticator(transport="internal")
    with connect(user=plain_role) as me:
        factor = me.execute("SELECT auth.enroll_my_webauthn('laptop')").fetchone()[0]
        o = me.execute("SELECT auth.webauthn_options()").fetchone()[0]
        assert o["webauthn"]["type"] == "create"
        assert me.execute("SELECT auth.mfa_verify_webauthn(%s, %s::jsonb)",
                          (o["challenge_id"], json.dumps(browser.create(o["webauthn"])))).fetchone()[0] is True
        assert me.execute("SELECT auth.aal()::text").fetchone()[0] == "aal2"
    with connect(user=plain_role) as me:
        assert me.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
        o = me.execute("SELECT auth.webauthn_options(%s)", (factor,)).fetchone()[0]
        assert o["webauthn"]["type"] == "request"
        credential = browser.get(o["webauthn"])
        # Another role cannot answer this user's challenge.
        with connect() as other:
            other.execute("CREATE ROLE e2e_other_webauthn LOGIN")
            try:
                with connect(user="e2e_other_webauthn") as o2:
                    with pytest.raises(psycopg.errors.NoDataFound):
                        o2.execute("SELECT auth.mfa_verify_webauthn(%s, %s::jsonb)",
                                   (o["challenge_id"], json.dumps(credential)))
            finally:
                other.execute("DROP ROLE e2e_other_webauthn")
        assert me.execute("SELECT auth.mfa_verify_webauthn(%s, %s::jsonb)",
                          (o["challenge_id"], json.dumps(credential))).fetchone()[0] is True
        assert me.execute("SELECT auth.aal()::text").fetchone()[0] == "aal2"
        assert [m["method"] for m in me.execute("SELECT auth.amr()").fetchone()[0]] == ["mfa/webauthn"]


def test_malformed_responses_are_errors_not_attempts(db, browser):
    browser.authenticator()
    factor, _ = register(db, browser, str(uuid.uuid4()))
    cid, options, _ = challenge(db, factor)
    good = browser.get(options)
    cases = [
        ("[1, 2]", "credential"),
        (json.dumps({**good, "rawId": 5}), "rawId"),
        (json.dumps({**good, "response": {**good["response"], "signature": "***"}}), "response.signature"),
        (json.dumps({**good, "response": {**good["response"], "authenticatorData": "AAAA"}}),
         "response.authenticatorData"),
        (json.dumps({**good, "response": {**good["response"], "clientDataJSON": "bm90IGpzb24"}}),
         "response.clientDataJSON"),
        (json.dumps({**good, "pad": "x" * (1 << 20)}), "credential"),
    ]
    for text, field in cases:
        t = time.perf_counter()
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=f'"{field}"'):
            db.execute("SELECT auth.verify_webauthn(%s, %s::jsonb)", (cid, text))
        assert time.perf_counter() - t < 1.0
    assert failures(db, factor) == 0
    # The challenge is still open: the real answer verifies.
    assert verify(db, cid, good) is True


def test_the_demo_page_registers_and_signs_in(database, browser):
    """scripts/webauthn-demo's page, clicked through in the browser: register, then sign in
    again in a new session; each time auth.aal() becomes aal2."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    import webauthn_demo

    from conftest import _free_port
    port = _free_port()
    page_origin = f"http://localhost:{port}"
    with connect() as c:
        c.execute("DO $$ BEGIN CREATE ROLE webauthn_demo LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        # The demo's page is the allowed origin for the demo user's sessions.
        c.execute(f"ALTER ROLE webauthn_demo SET mfa_auth.webauthn_origins = '{page_origin}'")
    srv = webauthn_demo.serve(f"host={os.environ.get('PGHOST', '127.0.0.1')} port={os.environ.get('PGPORT', '5432')} "
                              f"dbname={DB}", port)
    try:
        browser.authenticator(transport="internal")
        page = browser.page
        page.goto(page_origin + "/")
        page.wait_for_function("document.getElementById('aal').textContent.startsWith('aal1')")
        page.click("#register")
        page.wait_for_function("document.getElementById('aal').textContent.startsWith('aal2')")
        page.click("#signin")
        # Signed in again once the second verification is logged (aal2 was already shown).
        page.wait_for_function(
            "document.getElementById('log').textContent.split('auth.mfa_verify_webauthn: ').length === 3")
        assert page.inner_text("#aal").startswith("aal2")
        log = page.inner_text("#log")
        assert "auth.mfa_verify_webauthn: true, auth.aal(): aal2" in log, log
        assert log.count("auth.mfa_verify_webauthn: true") == 2, log
    finally:
        browser.page.goto(browser.origin + "/")
        srv.shutdown()
        with connect() as c:
            c.execute("DROP OWNED BY webauthn_demo")
            c.execute("DROP ROLE webauthn_demo")
