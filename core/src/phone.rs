//! Phone numbers for SMS factors.

/// Whether `phone` is an E.164 number: '+', a country code that does not start
/// with 0, and at most 15 digits in all (ITU-T E.164). No spaces or punctuation.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn e164() {
        for ok in ["+14155552671", "+442071838750", "+12", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in
            ["14155552671", "+0123", "+1", "+1234567890123456", "+1 415 555", "+1-415", "", "+", "+１２３", "+12\n"]
        {
            assert!(!is_e164(bad), "{bad:?}");
        }
    }
}
