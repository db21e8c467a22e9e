//! The policy hooks' protocol: the events mfa_auth passes to `mfa_auth.verification_hook` and
//! `mfa_auth.enrollment_hook`, and what their answers mean. Pure Rust: the pgrx shell
//! (src/hooks/) resolves the function, calls it as its owner and acts on the [`Decision`].
//!
//! A hook is a function `(event jsonb) returns jsonb`, as Supabase Auth's MFA verification
//! hook is: the verification event has Supabase's fields (`factor_id`, `factor_type`,
//! `user_id`, `valid`) plus `session_id`, `failed_attempts` and `ip_address`, and the answer is
//! `{"decision": "continue"}` or `{"decision": "reject", "message": "..."}`. Anything else
//! (another decision, no decision, not an object, an error) is a fault: the caller fails
//! closed, never treating it as `continue`.

use serde_json::{json, Map, Value};

/// Characters of a hook's message that reach the caller (longer ones are cut).
pub const MESSAGE_MAX: usize = 200;
/// Bytes of a hook's answer that are looked at (a larger one is a fault).
pub const ANSWER_MAX: usize = 64 * 1024;
/// Bytes of a fault's description kept (from the hook's error message).
pub const FAULT_MAX: usize = 200;

/// What a hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Rejected, with the hook's message (already cleaned: see [`clean_message`]).
    Reject(String),
}

/// Why a hook's answer cannot be acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The answer is not a JSON object (or is too large).
    NotAnObject,
    /// No `decision` member, or not a string.
    NoDecision,
    /// A `decision` other than `continue` or `reject`.
    UnknownDecision(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::NotAnObject => write!(f, "its answer is not a JSON object"),
            Fault::NoDecision => write!(f, "its answer has no \"decision\" string"),
            Fault::UnknownDecision(d) => {
                write!(f, "its answer's decision {:?} is neither \"continue\" nor \"reject\"", clean_message(d))
            }
        }
    }
}

/// Reads a hook's answer. A `message` that is not a string counts as none.
pub fn decide(answer: &Value) -> Result<Decision, Fault> {
    let Value::Object(o) = answer else {
        return Err(Fault::NotAnObject);
    };
    match o.get("decision") {
        Some(Value::String(d)) if d == "continue" => Ok(Decision::Continue),
        Some(Value::String(d)) if d == "reject" => {
            let message = o.get("message").and_then(Value::as_str).map(clean_message).unwrap_or_default();
            Ok(Decision::Reject(message))
        }
        Some(Value::String(d)) => Err(Fault::UnknownDecision(d.clone())),
        _ => Err(Fault::NoDecision),
    }
}

/// Reads a hook's answer from its text (jsonb's output), bounded first.
pub fn decide_text(answer: &str) -> Result<Decision, Fault> {
    if answer.len() > ANSWER_MAX {
        return Err(Fault::NotAnObject);
    }
    let v: Value = serde_json::from_str(answer).map_err(|_| Fault::NotAnObject)?;
    decide(&v)
}

/// A hook's message as the caller sees it: each run of control characters (newlines,
/// escapes, NUL…) and white space made one space, trimmed, at most [`MESSAGE_MAX`] characters.
pub fn clean_message(m: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in m.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out.chars().take(MESSAGE_MAX).collect::<String>().trim_end().to_owned()
}

/// A fault's or an error's text kept for the log and the caller: cleaned and bounded.
pub fn clean_fault(m: &str) -> String {
    let s: String = m.chars().filter(|c| !c.is_control()).collect();
    let mut n = s.len().min(FAULT_MAX);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s[..n].to_owned()
}

/// A phone number as the enrollment hook sees it: the country code's first digits and the
/// last two, the rest masked (`+44*******89`). Short or malformed input is masked whole.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if !phone.starts_with('+') || digits.len() < 7 {
        return "*".repeat(digits.len().max(1));
    }
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 2..].iter().collect();
    format!("+{head}{}{tail}", "*".repeat(digits.len() - 4))
}

/// The verification hook's event.
pub struct VerificationEvent<'a> {
    pub factor_id: uuid::Uuid,
    pub factor_type: &'a str,
    pub user_id: uuid::Uuid,
    pub valid: bool,
    pub session_id: Option<uuid::Uuid>,
    pub failed_attempts: i64,
    pub ip_address: Option<&'a str>,
    pub challenge_id: Option<uuid::Uuid>,
}

impl VerificationEvent<'_> {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("factor_id".into(), json!(self.factor_id.to_string()));
        m.insert("factor_type".into(), json!(self.factor_type));
        m.insert("user_id".into(), json!(self.user_id.to_string()));
        m.insert("valid".into(), json!(self.valid));
        m.insert("session_id".into(), json!(self.session_id.map(|s| s.to_string())));
        m.insert("failed_attempts".into(), json!(self.failed_attempts));
        m.insert("ip_address".into(), json!(self.ip_address));
        m.insert("challenge_id".into(), json!(self.challenge_id.map(|s| s.to_string())));
        Value::Object(m)
    }
}

/// The enrollment hook's event.
pub struct EnrollmentEvent<'a> {
    pub user_id: uuid::Uuid,
    pub factor_type: &'a str,
    pub friendly_name: Option<&'a str>,
    /// The number as given (masked here).
    pub phone: Option<&'a str>,
    pub session_id: Option<uuid::Uuid>,
    /// The session's level for the user ("aal1"/"aal2"); None without a session.
    pub aal: Option<&'a str>,
}

impl EnrollmentEvent<'_> {
    pub fn to_json(&self) -> Value {
        json!({
            "user_id": self.user_id.to_string(),
            "factor_type": self.factor_type,
            "friendly_name": self.friendly_name,
            "phone": self.phone.map(mask_phone),
            "session_id": self.session_id.map(|s| s.to_string()),
            "aal": self.aal,
        })
    }
}

/// A hook setting's value: `schema.function`, each part an identifier as SQL writes it
/// (unquoted: folded to lower case; or in double quotes, `""` for a quote). The schema is
/// required: an unqualified name would be looked up along a search_path.
pub fn parse_name(value: &str) -> Result<(String, String), &'static str> {
    let mut parts = Vec::new();
    let mut rest = value.trim();
    loop {
        let (part, after) = identifier(rest)?;
        parts.push(part);
        let after = after.trim_start();
        if after.is_empty() {
            break;
        }
        rest = after.strip_prefix('.').ok_or("expected '.' between the schema and the function name")?.trim_start();
    }
    match <[String; 2]>::try_from(parts) {
        Ok([schema, name]) => Ok((schema, name)),
        Err(p) if p.len() == 1 => Err("the name must be schema-qualified (schema.function)"),
        Err(_) => Err("expected schema.function (two parts)"),
    }
}

fn identifier(s: &str) -> Result<(String, &str), &'static str> {
    const NAMEDATALEN: usize = 64;
    if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if q[i + 1..].starts_with('"') {
                    out.push('"');
                    chars.next();
                    continue;
                }
                if out.is_empty() {
                    return Err("a quoted identifier is empty");
                }
                if out.len() >= NAMEDATALEN {
                    return Err("an identifier is longer than 63 bytes");
                }
                return Ok((out, &q[i + 1..]));
            }
            out.push(c);
        }
        return Err("a quoted identifier is not closed");
    }
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')).unwrap_or(s.len());
    let ident = &s[..end];
    match ident.chars().next() {
        None => return Err("expected an identifier"),
        Some(c) if c.is_ascii_digit() || c == '$' => return Err("an identifier cannot start with a digit or '$'"),
        _ => {}
    }
    if ident.len() >= NAMEDATALEN {
        return Err("an identifier is longer than 63 bytes");
    }
    Ok((ident.to_ascii_lowercase(), &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        assert_eq!(decide_text(r#"{"decision":"continue"}"#), Ok(Decision::Continue));
        assert_eq!(
            decide_text(r#"{"decision":"reject","message":"Too many attempts"}"#),
            Ok(Decision::Reject("Too many attempts".into()))
        );
        assert_eq!(decide_text(r#"{"decision":"reject"}"#), Ok(Decision::Reject(String::new())));
        assert_eq!(decide_text(r#"{"decision":"reject","message":7}"#), Ok(Decision::Reject(String::new())));
        assert_eq!(decide_text(r#"{"decision":"Continue"}"#), Err(Fault::UnknownDecision("Continue".into())));
        assert_eq!(decide_text(r#"{"decision":"allow"}"#), Err(Fault::UnknownDecision("allow".into())));
        assert_eq!(decide_text(r#"{"decision":true}"#), Err(Fault::NoDecision));
        assert_eq!(decide_text(r#"{"error":{"http_code":429,"message":"slow down"}}"#), Err(Fault::NoDecision));
        assert_eq!(decide_text(r#"["continue"]"#), Err(Fault::NotAnObject));
        assert_eq!(decide_text(r#""continue""#), Err(Fault::NotAnObject));
        assert_eq!(decide_text("null"), Err(Fault::NotAnObject));
        assert_eq!(decide_text("{"), Err(Fault::NotAnObject));
        let huge = format!(r#"{{"decision":"continue","x":"{}"}}"#, "a".repeat(ANSWER_MAX));
        assert_eq!(decide_text(&huge), Err(Fault::NotAnObject));
    }

    #[test]
    fn messages_are_cleaned_and_capped() {
        assert_eq!(clean_message("  line1\nline2\u{1b}[31m\u{0}  "), "line1 line2 [31m");
        assert_eq!(clean_message("Too many\r\n\tfailures"), "Too many failures");
        let long = "é".repeat(1000);
        assert_eq!(clean_message(&long).chars().count(), MESSAGE_MAX);
        let Ok(Decision::Reject(m)) = decide(&json!({"decision": "reject", "message": "x\r\ny".repeat(500)})) else {
            panic!()
        };
        assert!(m.chars().count() <= MESSAGE_MAX && !m.contains('\n'));
        assert!(clean_fault(&"ü".repeat(500)).len() <= FAULT_MAX);
    }

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("+447700900123"), "+44********23");
        assert_eq!(mask_phone("+15551234567"), "+15*******67");
        assert_eq!(mask_phone("+123"), "***");
        assert_eq!(mask_phone(""), "*");
        assert!(!mask_phone("+447700900123").contains("7700900"));
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("hooks.verify"), Ok(("hooks".into(), "verify".into())));
        assert_eq!(parse_name(" Hooks . Verify "), Ok(("hooks".into(), "verify".into())));
        assert_eq!(parse_name(r#""My Schema"."a""b""#), Ok(("My Schema".into(), "a\"b".into())));
        assert!(parse_name("verify").is_err());
        assert!(parse_name("a.b.c").is_err());
        assert!(parse_name("a.").is_err());
        assert!(parse_name("a.b(jsonb)").is_err());
        assert!(parse_name("a;b").is_err());
        assert!(parse_name("1a.b").is_err());
        assert!(parse_name(r#""".b"#).is_err());
        assert!(parse_name(r#""a.b"#).is_err());
        assert!(parse_name(&format!("a.{}", "x".repeat(64))).is_err());
    }

    #[test]
    fn events_have_supabase_fields() {
        let id = uuid::Uuid::nil();
        let e = VerificationEvent {
            factor_id: id,
            factor_type: "totp",
            user_id: id,
            valid: true,
            session_id: None,
            failed_attempts: 2,
            ip_address: Some("10.0.0.1"),
            challenge_id: None,
        }
        .to_json();
        for k in ["factor_id", "factor_type", "user_id", "valid", "session_id", "failed_attempts", "ip_address"] {
            assert!(e.get(k).is_some(), "{k}");
        }
        assert_eq!(e["valid"], json!(true));
        let e = EnrollmentEvent {
            user_id: id,
            factor_type: "phone",
            friendly_name: Some("work"),
            phone: Some("+447700900123"),
            session_id: None,
            aal: None,
        }
        .to_json();
        assert_eq!(e["phone"], json!("+44********23"));
        assert_eq!(e["aal"], Value::Null);
    }
}
