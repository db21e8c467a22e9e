//! otpauth URIs in the Google Authenticator Key-URI format:
//! `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=...&digits=...&period=...`

use super::hotp::{check_digits, check_period, Algorithm};
use super::{base32, invalid, OtpError};

/// Whether the credential is time based (`totp`) or counter based (`hotp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Totp,
    Hotp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Hotp => "hotp",
        }
    }
}

/// The parameters an otpauth URI carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUri {
    pub kind: Kind,
    pub issuer: Option<String>,
    pub account_name: String,
    /// Canonical base32 (upper case, no padding).
    pub secret: String,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub counter: Option<u64>,
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str, what: &str) -> Result<String, OtpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| OtpError::InvalidUri(format!("bad percent-escape in {what}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' if what != "label" => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| OtpError::InvalidUri(format!("{what} is not UTF-8")))
}

fn check_label_part(arg: &'static str, s: &str) -> Result<(), OtpError> {
    super::check_len(arg, s, super::limits::LABEL_PART)?;
    if s.trim().is_empty() {
        return Err(invalid(arg, "must not be empty"));
    }
    if s.contains(':') {
        return Err(invalid(arg, "must not contain ':'"));
    }
    Ok(())
}

/// Builds a TOTP key URI. `secret` is base32 (checked and canonicalised).
pub fn build_totp(
    secret: &str,
    account_name: &str,
    issuer: Option<&str>,
    algorithm: Algorithm,
    digits: u32,
    period: u64,
) -> Result<String, OtpError> {
    check_label_part("account_name", account_name)?;
    if let Some(iss) = issuer {
        check_label_part("issuer", iss)?;
    }
    let key = base32::decode(secret)?;
    let mut uri = String::from("otpauth://totp/");
    if let Some(iss) = issuer {
        uri.push_str(&percent_encode(iss));
        uri.push(':');
    }
    uri.push_str(&percent_encode(account_name));
    uri.push_str("?secret=");
    uri.push_str(&base32::encode(&key));
    if let Some(iss) = issuer {
        uri.push_str("&issuer=");
        uri.push_str(&percent_encode(iss));
    }
    uri.push_str(&format!("&algorithm={}&digits={digits}&period={period}", algorithm.name()));
    Ok(uri)
}

/// Parses an otpauth URI (totp or hotp). Missing parameters take the format's
/// defaults (SHA1, 6 digits, 30 s). The issuer parameter wins over the label
/// prefix only when both agree; when they differ the URI is refused.
pub fn parse(uri: &str) -> Result<KeyUri, OtpError> {
    super::check_len("uri", uri, super::limits::URI)?;
    let bad = |why: &str| OtpError::InvalidUri(why.to_string());
    let rest = uri
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("otpauth://"))
        .map(|_| &uri[10..])
        .ok_or_else(|| bad("must start with otpauth://"))?;
    let (kind_str, rest) = rest.split_once('/').ok_or_else(|| bad("missing type (totp or hotp)"))?;
    let kind = if kind_str.eq_ignore_ascii_case("totp") {
        Kind::Totp
    } else if kind_str.eq_ignore_ascii_case("hotp") {
        Kind::Hotp
    } else {
        return Err(bad("type must be totp or hotp"));
    };
    let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
    let label = percent_decode(label, "label")?;
    let (label_issuer, account) = match label.split_once(':') {
        Some((i, a)) => (Some(i.trim().to_string()), a.trim().to_string()),
        None => (None, label.trim().to_string()),
    };
    if account.is_empty() {
        return Err(bad("the label has no account name"));
    }
    if account.contains(':') {
        return Err(bad("the label has more than one ':'"));
    }

    let mut secret = None;
    let mut issuer = None;
    let mut algorithm = Algorithm::Sha1;
    let mut digits = 6u32;
    let mut period = 30u64;
    let mut counter = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v, "a parameter")?;
        let num = |what: &str| -> Result<i64, OtpError> {
            v.parse::<i64>().map_err(|_| OtpError::InvalidUri(format!("{what} is not a number")))
        };
        match k.to_ascii_lowercase().as_str() {
            "secret" => secret = Some(base32::encode(&base32::decode(&v)?)),
            "issuer" => issuer = Some(v.trim().to_string()),
            "algorithm" => algorithm = Algorithm::parse(&v)?,
            "digits" => digits = check_digits(num("digits")?)?,
            "period" => period = check_period(num("period")?)?,
            "counter" => {
                let c = num("counter")?;
                if c < 0 {
                    return Err(bad("counter must not be negative"));
                }
                counter = Some(c as u64)
            }
            _ => {} // unknown parameters (image, color, ...) are ignored, as apps do
        }
    }
    let secret = secret.ok_or_else(|| bad("missing secret parameter"))?;
    if kind == Kind::Hotp && counter.is_none() {
        return Err(bad("hotp URIs need a counter parameter"));
    }
    let issuer = match (label_issuer, issuer) {
        (Some(l), Some(p)) if l != p => return Err(bad("issuer parameter and label prefix differ")),
        (l, p) => p.or(l).filter(|s| !s.is_empty()),
    };
    Ok(KeyUri { kind, issuer, account_name: account, secret, algorithm, digits, period, counter })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_google_format() {
        let u =
            build_totp("jbsw y3dp ehpk 3pxp", "alice@example.com", Some("ACME Co"), Algorithm::Sha1, 6, 30).unwrap();
        assert_eq!(
            u,
            "otpauth://totp/ACME%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
        );
        let p = parse(&u).unwrap();
        assert_eq!(p.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(p.account_name, "alice@example.com");
        assert_eq!(p.secret, "JBSWY3DPEHPK3PXP");
        assert_eq!((p.digits, p.period, p.algorithm), (6, 30, Algorithm::Sha1));
    }

    #[test]
    fn refuses_colons_and_empties() {
        assert!(build_totp("JBSWY3DP", "a:b", None, Algorithm::Sha1, 6, 30).is_err());
        assert!(build_totp("JBSWY3DP", "a", Some("x:y"), Algorithm::Sha1, 6, 30).is_err());
        assert!(build_totp("JBSWY3DP", " ", None, Algorithm::Sha1, 6, 30).is_err());
        assert!(build_totp("JBSWY3D!", "a", None, Algorithm::Sha1, 6, 30).is_err());
    }

    #[test]
    fn parses_variants() {
        let p = parse("otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=7&digits=8&algorithm=sha256").unwrap();
        assert_eq!((p.kind, p.counter, p.digits, p.algorithm), (Kind::Hotp, Some(7), 8, Algorithm::Sha256));
        assert_eq!(p.issuer, None);
        let p = parse("otpauth://totp/Example%3Aalice?secret=jbswy3dpehpk3pxp&issuer=Example").unwrap();
        assert_eq!(p.issuer.as_deref(), Some("Example"));
        for bad in [
            "",
            "http://totp/a?secret=JBSWY3DP",
            "otpauth://totp/a",
            "otpauth://totp/?secret=JBSWY3DP",
            "otpauth://xotp/a?secret=JBSWY3DP",
            "otpauth://hotp/a?secret=JBSWY3DP",
            "otpauth://totp/a?secret=JBSWY3DP&digits=99",
            "otpauth://totp/a?secret=JBSWY3DP&period=0",
            "otpauth://totp/a%ZZ?secret=JBSWY3DP",
            "otpauth://totp/I:a?secret=JBSWY3DP&issuer=J",
            "otpauth://totp/a:b:c?secret=JBSWY3DP",
            "otpauth://totp/a?secret=JBSWY3DP&counter=-1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
