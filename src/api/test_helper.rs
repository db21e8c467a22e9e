//! The C entry point of the test-helper extension mfa_auth_test (mfa_auth_test/): no SQL in
//! mfa_auth's own install script (`sql = false`); mfa_auth_test's script names the symbol in
//! `$libdir/mfa_auth`, so the helper needs no library of its own.

use pgrx::prelude::*;

/// mfa_test.in_transaction_block(): whether the caller runs inside BEGIN … COMMIT, which
/// mfa_test.sign_in needs (the role and claims it sets last until the transaction ends). Inside
/// a subtransaction (an exception block) Postgres does not say whether the top transaction is a
/// block: true then, so that only a plain autocommit call is refused.
#[pg_extern(sql = false, volatile, parallel_safe)]
fn mfa_test_in_transaction_block() -> bool {
    // SAFETY: plain reads of transaction state.
    unsafe { pg_sys::IsTransactionBlock() || pg_sys::GetCurrentTransactionNestLevel() > 1 }
}
