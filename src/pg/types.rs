//! Conversions between SQL values and the core's plain Rust types.

use pgrx::prelude::*;

use crate::otp::{Algorithm, OtpParams};
use crate::pg::error::{raise, required, MfaError, OrRaise};

/// Seconds between 1970-01-01 and 2000-01-01 (Postgres' timestamp epoch).
const PG_EPOCH_OFFSET_SECS: i64 = 946_684_800;

/// Unix seconds (rounded down) of a finite timestamptz.
pub fn unix_seconds(ts: TimestampWithTimeZone, arg: &'static str) -> i64 {
    if !ts.is_finite() {
        raise(MfaError::invalid(arg, "must be a finite timestamp"));
    }
    let micros: i64 = ts.into_inner();
    micros.div_euclid(1_000_000) + PG_EPOCH_OFFSET_SECS
}

/// Checked OTP parameters from nullable SQL arguments.
pub fn otp_params(digits: Option<i32>, period: Option<i32>, algorithm: Option<&str>) -> OtpParams {
    let algorithm = Algorithm::parse(required(algorithm, "algorithm")).or_raise();
    OtpParams::new(algorithm, i64::from(required(digits, "digits")), i64::from(required(period, "period"))).or_raise()
}

/// A `jsonb` argument whose size is checked before it is converted: a value larger than
/// [`mfa_auth_core::webauthn::limits::CREDENTIAL_JSON`] is never detoasted or turned into text.
pub enum CredentialJson {
    Text(String),
    TooLong,
}

impl FromDatum for CredentialJson {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a jsonb argument datum; toast_raw_datum_size reads only its header (or its
        // TOAST pointer) and returns the size it has detoasted, without detoasting it.
        let size = unsafe { pg_sys::toast_raw_datum_size(datum) };
        if size > mfa_auth_core::webauthn::limits::CREDENTIAL_JSON {
            return Some(CredentialJson::TooLong);
        }
        // SAFETY: as pgrx's own JsonB conversion: detoast, then jsonb_out to text.
        let text = unsafe {
            let varlena = datum.cast_mut_ptr();
            let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
            let cstr = pgrx::direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())])
                .expect("a jsonb datum has a text form");
            let text = cstr.to_string_lossy().into_owned();
            pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
            text
        };
        Some(CredentialJson::Text(text))
    }
}

pgrx::impl_sql_translatable!(CredentialJson, "jsonb");

// SAFETY: as pgrx's own impls for FromDatum types (argue_from_datum): the argument is a jsonb
// datum (the SQL signature says so), unboxed through FromDatum above.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for CredentialJson {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // (Only reachable through a non-strict signature taking it as non-Option: none does.)
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| crate::pg::error::raise(crate::pg::error::MfaError::NullArgument("credential")))
    }

    unsafe fn unbox_nullable_arg(arg: pgrx::callconv::Arg<'_, 'fcx>) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

impl CredentialJson {
    /// The JSON text; a value that was too long raises 22023 here.
    pub fn text(&self) -> &str {
        match self {
            CredentialJson::Text(t) => t,
            CredentialJson::TooLong => raise(MfaError::Webauthn(mfa_auth_core::webauthn::WebauthnError::TooLong {
                field: "credential",
                max: mfa_auth_core::webauthn::limits::CREDENTIAL_JSON,
            })),
        }
    }
}

/// The factor type whose `auth.factor_type` label is `label` (a label this extension does
/// not know is a factor row of a newer version: 0A000).
pub fn factor_type(label: &str) -> mfa_auth_core::factor_type::FactorType {
    mfa_auth_core::factor_type::FactorType::from_sql_name(label)
        .unwrap_or_else(|| raise(MfaError::UnsupportedFactor(label.to_owned())))
}
