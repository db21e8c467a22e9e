//! Stateless one-time-password functions: thin SQL shells over [`crate::otp`].

use pgrx::prelude::*;

use crate::otp::{base32, hotp, qr, secret, uri, Algorithm};
use crate::pg::error::{required, MfaError, OrRaise};
use crate::pg::types::{otp_params, unix_seconds};

/// The TOTP code of `secret` (base32) at time `at`.
#[pg_extern(immutable, parallel_safe)]
fn totp_generate(
    secret: Option<&str>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    digits: default!(Option<i32>, 6),
    period: default!(Option<i32>, 30),
    algorithm: default!(Option<&str>, "'SHA1'"),
) -> String {
    let key = base32::decode_key(required(secret, "secret")).or_raise();
    let params = otp_params(digits, period, algorithm);
    let t = unix_seconds(required(at, "at"), "at");
    hotp::totp(&key, t, &params).or_raise().as_str().to_owned()
}

/// The time step that `code` matches within `window` steps of `at`, or NULL.
#[pg_extern(immutable, parallel_safe)]
fn totp_verify(
    secret: Option<&str>,
    code: Option<&str>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    window: default!(Option<i32>, 1),
    digits: default!(Option<i32>, 6),
    period: default!(Option<i32>, 30),
    algorithm: default!(Option<&str>, "'SHA1'"),
) -> Option<i64> {
    let key = base32::decode_key(required(secret, "secret")).or_raise();
    let code = required(code, "code");
    let window = hotp::check_window(i64::from(required(window, "window"))).or_raise();
    let params = otp_params(digits, period, algorithm);
    let t = unix_seconds(required(at, "at"), "at");
    let step = hotp::verify_totp(&key, code, t, window, &params).or_raise()?;
    // Steps of real times fit easily; a step beyond i64 cannot come from a finite timestamptz.
    Some(i64::try_from(step).map_err(|_| MfaError::invalid("at", "time step out of range")).or_raise())
}

/// The HOTP code of `secret` (base32) for `counter`.
#[pg_extern(immutable, parallel_safe)]
fn hotp_generate(
    secret: Option<&str>,
    counter: Option<i64>,
    digits: default!(Option<i32>, 6),
    algorithm: default!(Option<&str>, "'SHA1'"),
) -> String {
    let key = base32::decode_key(required(secret, "secret")).or_raise();
    let counter = required(counter, "counter");
    let counter = u64::try_from(counter)
        .map_err(|_| MfaError::invalid("counter", format!("must not be negative, got {counter}")))
        .or_raise();
    let digits = hotp::check_digits(i64::from(required(digits, "digits"))).or_raise();
    let algorithm = Algorithm::parse(required(algorithm, "algorithm")).or_raise();
    hotp::hotp(&key, counter, digits, algorithm).as_str().to_owned()
}

/// A new random base32 secret of `bytes` bytes from the OS CSPRNG.
#[pg_extern(volatile, parallel_safe)]
fn generate_secret(bytes: default!(Option<i32>, 20)) -> String {
    secret::generate(i64::from(required(bytes, "bytes"))).or_raise()
}

/// An otpauth://totp/ URI (Google Authenticator Key-URI format).
#[pg_extern(immutable, parallel_safe)]
fn otpauth_uri(
    secret: Option<&str>,
    account_name: Option<&str>,
    issuer: Option<&str>,
    digits: default!(Option<i32>, 6),
    period: default!(Option<i32>, 30),
    algorithm: default!(Option<&str>, "'SHA1'"),
) -> String {
    let params = otp_params(digits, period, algorithm);
    uri::build_totp(
        required(secret, "secret"),
        required(account_name, "account_name"),
        issuer,
        params.algorithm,
        params.digits,
        params.period,
    )
    .or_raise()
}

/// The parameters of an otpauth URI, to import an existing credential.
#[allow(clippy::type_complexity)] // the SQL result row, spelled out for pgrx
#[pg_extern(immutable, parallel_safe)]
fn otpauth_parse(
    uri: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(type, String),
        name!(issuer, Option<String>),
        name!(account_name, String),
        name!(secret, String),
        name!(algorithm, String),
        name!(digits, i32),
        name!(period, Option<i32>),
        name!(counter, Option<i64>),
    ),
> {
    let k = uri::parse(required(uri, "uri")).or_raise();
    let period = match k.kind {
        uri::Kind::Totp => {
            Some(i32::try_from(k.period).map_err(|_| MfaError::invalid("uri", "period is out of range")).or_raise())
        }
        uri::Kind::Hotp => None,
    };
    let counter =
        k.counter.map(|c| i64::try_from(c).map_err(|_| MfaError::invalid("uri", "counter is out of range")).or_raise());
    TableIterator::once((
        k.kind.name().to_owned(),
        k.issuer,
        k.account_name,
        k.secret,
        k.algorithm.name().to_owned(),
        k.digits as i32,
        period,
        counter,
    ))
}

/// A QR code of `data` drawn with Unicode half blocks, for psql. `invert => true`
/// for terminals with dark text on a light background.
#[pg_extern(immutable, parallel_safe)]
fn qr_text(data: Option<&str>, invert: default!(Option<bool>, false)) -> String {
    qr::to_text(required(data, "data"), required(invert, "invert")).or_raise()
}

/// A QR code of `data` as an SVG document.
#[pg_extern(immutable, parallel_safe)]
fn qr_svg(data: Option<&str>) -> String {
    qr::to_svg(required(data, "data")).or_raise()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    /// RFC 6238 Appendix B through SQL, all 18 rows (seeds of 20, 32 and 64 bytes).
    #[pg_test]
    fn rfc6238_vectors_through_sql() {
        let n = Spi::get_one::<i64>(
            "WITH seed(alg, secret) AS (VALUES ('SHA1', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'),
                    ('SHA256', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA'),
                    ('SHA512', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA')),
             v(t, code, alg) AS (VALUES
               (59, '94287082', 'SHA1'), (59, '46119246', 'SHA256'), (59, '90693936', 'SHA512'),
               (1111111109, '07081804', 'SHA1'), (1111111109, '68084774', 'SHA256'), (1111111109, '25091201', 'SHA512'),
               (1111111111, '14050471', 'SHA1'), (1111111111, '67062674', 'SHA256'), (1111111111, '99943326', 'SHA512'),
               (1234567890, '89005924', 'SHA1'), (1234567890, '91819424', 'SHA256'), (1234567890, '93441116', 'SHA512'),
               (2000000000, '69279037', 'SHA1'), (2000000000, '90698825', 'SHA256'), (2000000000, '38618901', 'SHA512'),
               (20000000000, '65353130', 'SHA1'), (20000000000, '77737706', 'SHA256'), (20000000000, '47863826', 'SHA512'))
             SELECT count(*) FROM v JOIN seed USING (alg)
              WHERE auth.totp_generate(secret, to_timestamp(t), 8, 30, alg) = code
                AND auth.totp_verify(lower(secret), code, to_timestamp(t), 1, 8, 30, lower(alg)) = t / 30",
        );
        assert_eq!(n, Ok(Some(18)));
    }

    #[pg_test]
    fn rfc4226_vectors_through_sql() {
        let got = one("SELECT string_agg(auth.hotp_generate('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', c), ',' ORDER BY c)
               FROM generate_series(0, 9) c");
        assert_eq!(got.as_deref(), Some("755224,287082,359152,969429,338314,254676,287922,162583,399871,520489"));
    }

    #[pg_test]
    fn verify_window_returns_the_step() {
        let got = Spi::get_one::<i64>(
            "SELECT auth.totp_verify('JBSWY3DPEHPK3PXP',
                    auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(1700000000 - 30)),
                    to_timestamp(1700000000))",
        );
        assert_eq!(got, Ok(Some(1700000000 / 30 - 1)));
        let outside = Spi::get_one::<i64>(
            "SELECT auth.totp_verify('JBSWY3DPEHPK3PXP',
                    auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(1700000000 - 30)),
                    to_timestamp(1700000000), 0)",
        );
        assert_eq!(outside, Ok(None));
    }

    #[pg_test]
    #[should_panic(expected = "invalid secret: character '1' at position 3 is not base32")]
    fn bad_base32_names_the_character() {
        one("SELECT auth.totp_generate('AB1CDEFG')");
    }

    #[pg_test]
    #[should_panic(expected = "invalid digits: must be between 6 and 10, got 5")]
    fn digits_out_of_range() {
        one("SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 5)");
    }

    #[pg_test]
    #[should_panic(expected = "secret must not be NULL")]
    fn null_secret_is_refused() {
        one("SELECT auth.totp_generate(NULL)");
    }

    #[pg_test]
    fn uri_round_trips_through_parse() {
        let got = one(
            "SELECT format('%s|%s|%s|%s|%s|%s', type, issuer, account_name, secret, algorithm, digits)
               FROM auth.otpauth_parse(auth.otpauth_uri('jbswy3dpehpk3pxp', 'alice@example.com', 'ACME', 8, 60, 'sha256'))",
        );
        assert_eq!(got.as_deref(), Some("totp|ACME|alice@example.com|JBSWY3DPEHPK3PXP|SHA256|8"));
    }
}
