//! The statements that write a verification's outcome, spelled once. Each factor kind's
//! success and failure statement is built here from shared parts (its own statement, so that
//! each keeps one cached generic plan: a part that ran only for some calls, switched by a
//! parameter, made Postgres re-plan at every call; bench/run checks it). The argument
//! layouts are fixed, so the pipeline builds the arguments once for every kind.

use pgrx::pg_sys;

/// Arguments of every success statement: `$1` the row the verification answers (its
/// challenge, or the user's recovery-code set), `$2` the factor, `$3` the accepted TOTP step,
/// `$4` the session (NULL: no claim), `$5` the AMR method, `$6` a new claim's id, `$7` the
/// secret re-sealed with the current key, `$8` the WebAuthn credential to store.
pub const SUCCESS_ARGS: &[pg_sys::Oid] = &[
    pg_sys::UUIDOID,
    pg_sys::UUIDOID,
    pg_sys::INT8OID,
    pg_sys::UUIDOID,
    pg_sys::TEXTOID,
    pg_sys::UUIDOID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
];

/// Arguments of every failure statement: `$1` the row that counts failures (the factor, or the
/// recovery-code set), `$2` the count decided by attempt_limits, `$3` whether it reached the
/// limit (lock), `$4` for how many seconds, `$5` the re-sealed secret, `$6` the challenge.
pub const FAILURE_ARGS: &[pg_sys::Oid] =
    &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::BOOLOID, pg_sys::INT4OID, pg_sys::TEXTOID, pg_sys::UUIDOID];

/// A success: `$verified` is the CTEs that mark what was answered as verified, the first one
/// named `c` and returning `verified_at`; then, when a session is given, its AMR claim is
/// recorded (upsert: a claim of this method may exist, earned by another factor or earlier)
/// and linked to the factor behind it.
///
/// The link is inserted only when missing, with `NOT EXISTS` and no `ON CONFLICT`, for every
/// kind: its key holds the factor, whose row every verification has locked (`FOR UPDATE OF
/// f, c`, or `OF s, f` for recovery codes) before it gets here, so no other transaction can be
/// adding the same link meanwhile, and a speculative insertion would cost a WAL record more.
/// (tests/e2e/test_recovery_codes.py::test_claim_link_is_written_once checks a second
/// success of one session and a concurrent one.)
macro_rules! success_statement {
    ($verified:expr) => {
        $crate::pg::spi::Stmt {
            sql: concat!(
                "WITH ",
                $verified,
                ", claim AS (",
                $crate::amr::claim_upsert!(
                    "SELECT $6, $4, $5, verified_at, verified_at FROM c WHERE $4 IS NOT NULL",
                    "a.session_id"
                ),
                ")
          INSERT INTO auth.mfa_amr_claim_factors (session_id, authentication_method, factor_id)
          SELECT claim.session_id, $5, $2 FROM claim
           WHERE NOT EXISTS (SELECT FROM auth.mfa_amr_claim_factors l
                              WHERE l.factor_id = $2 AND l.session_id = claim.session_id
                                AND l.authentication_method = $5)"
            ),
            args: $crate::factor_kinds::record::SUCCESS_ARGS,
        }
    };
}
pub(crate) use success_statement;

/// The success of a challenge's kind: the challenge verified; `$closed`, more CTEs; the
/// factor verified, with the accepted TOTP step, a clean failure count and the re-sealed
/// secret; `$factor_columns`, more of its columns to set.
macro_rules! challenge_success {
    ($closed:literal, $factor_columns:literal) => {
        $crate::factor_kinds::record::success_statement!(concat!(
            "c AS (
              UPDATE auth.mfa_challenges SET verified_at = pg_catalog.clock_timestamp()
               WHERE id = $1 RETURNING verified_at
          )",
            $closed,
            ", f AS (
              UPDATE auth.mfa_factors
                 SET status = 'verified', last_totp_step = COALESCE($3, last_totp_step),
                     failed_attempts = 0, locked_until = NULL, updated_at = (SELECT verified_at FROM c),
                     secret = COALESCE($7, secret)",
            $factor_columns,
            " WHERE id = $2
          )"
        ))
    };
}
pub(crate) use challenge_success;

/// A failure: `$before`, CTEs to run first; then the failure count (`$2`) and the lock when it
/// reached the limit (`$3`, for `$4` seconds) in table `$table`'s columns `$count` and
/// `$until`; `$also`, more columns to set.
macro_rules! failure_statement {
    ($before:literal, $table:literal, $count:literal, $until:literal, $also:literal) => {
        $crate::pg::spi::Stmt {
            sql: concat!(
                $before,
                "UPDATE ",
                $table,
                " SET ",
                $count,
                " = $2, ",
                $until,
                " = CASE WHEN $3 THEN pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4) END, ",
                $also,
                " updated_at = pg_catalog.clock_timestamp()
           WHERE id = $1"
            ),
            args: $crate::factor_kinds::record::FAILURE_ARGS,
        }
    };
}
pub(crate) use failure_statement;

/// The failure of a challenge's kind: counted on the factor, with its re-sealed secret.
macro_rules! factor_failure {
    ($before:literal) => {
        $crate::factor_kinds::record::failure_statement!(
            $before,
            "auth.mfa_factors",
            "failed_attempts",
            "locked_until",
            "secret = COALESCE($5, secret),"
        )
    };
}
pub(crate) use factor_failure;
