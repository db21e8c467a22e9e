"""Resources: no caller input makes a backend allocate without bound on its way to an error.
Each QR path (and each secret or URI argument) gets a 20 MB argument, made server-side, and
must refuse it (54000) in under 0.1 s with the backend's peak RSS (`VmHWM` in
/proc/<pid>/status) growing by less than 10 MB beyond what a statement that only makes the
same argument costs Postgres (each measured as the first statement of a fresh connection)."""
import time

import psycopg
import pytest

from conftest import connect

BIG = "repeat('A1', 10000000)"  # 20 000 000 bytes, made by the server


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def timed(conn, sql):
    t0 = time.monotonic()
    conn.execute(sql)
    return time.monotonic() - t0


def peak_growth_kb(conn, sql, error=None):
    """Runs `sql` as the first statement of a fresh connection: (seconds, growth of the
    backend's peak RSS in kB)."""
    pid = conn.info.backend_pid
    before = vm_hwm_kb(pid)
    t0 = time.monotonic()
    if error:
        with pytest.raises(error):
            conn.execute(sql)
    else:
        conn.execute(sql)
    return time.monotonic() - t0, vm_hwm_kb(pid) - before


def refused_cheaply(connect_as, call, error=psycopg.errors.ProgramLimitExceeded, base="octet_length({v})"):
    """`call` with BIG for `{v}`, compared with a statement that only makes the same argument
    (`base`: Postgres' own cost of a statement carrying a 20 MB argument), each on a fresh
    connection: returns (seconds the refusal took beyond that, growth of peak RSS in kB
    beyond that). The call must fail with `error`."""
    with connect_as() as c:
        base_s, base_kb = peak_growth_kb(c, "SELECT " + base.format(v=BIG))
    with connect_as() as c:
        call_s, call_kb = peak_growth_kb(c, "SELECT " + call.format(v=BIG), error)
    return call_s - base_s, call_kb - base_kb


QR_PATHS_PUBLIC = [
    "auth.qr_text({v})",
    "auth.qr_text({v}, true)",
    "auth.qr_svg({v})",
    "auth.enroll_my_totp(issuer => {v})",
    "auth.enroll_my_totp(friendly_name => {v})",
    "auth.otpauth_uri('JBSWY3DPEHPK3PXP', {v}, 'ACME')",
    "auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'alice', {v})",
    "auth.otpauth_parse({v})",
    "auth.totp_generate({v})",
    "auth.totp_verify({v}, '123456')",
    "auth.hotp_generate({v}, 1)",
]
QR_PATHS_SERVICE = [
    "auth.enroll_totp(gen_random_uuid(), issuer => {v})",
    "auth.enroll_totp(gen_random_uuid(), account_name => {v})",
    "auth.enroll_totp(gen_random_uuid(), friendly_name => {v})",
    "auth.enroll_phone(gen_random_uuid(), '+14155552671', {v})",
]


@pytest.mark.parametrize("sql", QR_PATHS_PUBLIC)
def test_public_functions_refuse_20_mb_before_allocating(plain_role, sql):
    elapsed, grown_kb = refused_cheaply(lambda: connect(user=plain_role), sql)
    print(f"\n  {sql:<56} refused in {elapsed * 1000:.1f} ms, peak RSS +{grown_kb} kB")
    assert elapsed < 0.1 and grown_kb < 10 * 1024


@pytest.mark.parametrize("sql", QR_PATHS_SERVICE)
def test_service_functions_refuse_20_mb_before_allocating(service_role, sql):
    elapsed, grown_kb = refused_cheaply(lambda: connect(user=service_role), sql)
    print(f"\n  {sql:<56} refused in {elapsed * 1000:.1f} ms, peak RSS +{grown_kb} kB")
    assert elapsed < 0.1 and grown_kb < 10 * 1024


JSONB_BIG = "jsonb_build_object('x', {v})"
# WebAuthn and recovery-code arguments: a 20 MB friendly name (54000), a 20 MB credential
# (22023, refused from the datum's size before it is detoasted or converted), a 20 MB code of
# a user without codes (P0002 before the code is looked at).
NEW_PATHS_PUBLIC = [
    ("auth.enroll_my_webauthn({v})", psycopg.errors.ProgramLimitExceeded, "octet_length({v})"),
    ("auth.mfa_verify_webauthn(gen_random_uuid(), " + JSONB_BIG + ")", psycopg.errors.InvalidParameterValue,
     "pg_column_size(" + JSONB_BIG + ")"),
    ("auth.mfa_verify_recovery_code({v})", psycopg.errors.NoDataFound, "octet_length({v})"),
]
NEW_PATHS_SERVICE = [
    ("auth.enroll_webauthn(gen_random_uuid(), {v})", psycopg.errors.ProgramLimitExceeded, "octet_length({v})"),
    ("auth.verify_webauthn(gen_random_uuid(), " + JSONB_BIG + ")", psycopg.errors.InvalidParameterValue,
     "pg_column_size(" + JSONB_BIG + ")"),
    ("auth.verify_recovery_code(gen_random_uuid(), {v})", psycopg.errors.NoDataFound, "octet_length({v})"),
]


@pytest.mark.parametrize("sql,error,base", NEW_PATHS_PUBLIC)
def test_new_public_paths_refuse_20_mb_cheaply(plain_role, sql, error, base):
    elapsed, grown_kb = refused_cheaply(lambda: connect(user=plain_role), sql, error, base)
    print(f"\n  {sql[:56]:<56} refused in {elapsed * 1000:.1f} ms, peak RSS +{grown_kb} kB")
    assert elapsed < 0.1 and grown_kb < 10 * 1024


@pytest.mark.parametrize("sql,error,base", NEW_PATHS_SERVICE)
def test_new_service_paths_refuse_20_mb_cheaply(service_role, sql, error, base):
    elapsed, grown_kb = refused_cheaply(lambda: connect(user=service_role), sql, error, base)
    print(f"\n  {sql[:56]:<56} refused in {elapsed * 1000:.1f} ms, peak RSS +{grown_kb} kB")
    assert elapsed < 0.1 and grown_kb < 10 * 1024


def test_huge_claims_are_no_identity(plain_role):
    """request.jwt.claims is settable by everyone: a huge one is not parsed (no identity)."""
    with connect() as admin:
        admin.execute(f"ALTER ROLE {plain_role} SET mfa_auth.jwt_claims_roles = '{plain_role}'")
    with connect(user=plain_role) as gw:
        pid = gw.info.backend_pid
        gw.execute("""SELECT set_config('request.jwt.claims',
                        '{"sub": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "pad": "' || repeat('x', 20000000) || '"}', false)""")
        before = vm_hwm_kb(pid)
        assert gw.execute("SELECT auth.uid()").fetchone()[0] is None
        assert vm_hwm_kb(pid) - before < 10 * 1024
