//! The factor types (`auth.factor_type`) and the authentication method (AMR) a verification
//! of each earns: the one place in Rust that spells these names. The extension's pg_test
//! `sql_and_rust_agree_on_the_mfa_methods_and_factor_types` checks them against the SQL enum
//! and the list sql/amr.sql spells.

/// `auth.factor_type`, in the order of its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorType {
    Totp,
    Webauthn,
    Phone,
    /// A user's recovery codes: a factor verified when created, with no challenges.
    RecoveryCode,
}

impl FactorType {
    /// In the order of auth.factor_type's labels.
    pub const ALL: [FactorType; 4] =
        [FactorType::Totp, FactorType::Webauthn, FactorType::Phone, FactorType::RecoveryCode];

    /// The `auth.factor_type` label.
    pub fn sql_name(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Phone => "phone",
            FactorType::Webauthn => "webauthn",
            FactorType::RecoveryCode => "recovery_code",
        }
    }

    /// The type whose label is `label`.
    pub fn from_sql_name(label: &str) -> Option<FactorType> {
        Self::ALL.into_iter().find(|t| t.sql_name() == label)
    }

    /// The authentication method a verification of this type records (Supabase Auth's names).
    pub fn amr_method(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Phone => "mfa/phone",
            FactorType::Webauthn => "mfa/webauthn",
            // supabase/auth#2728: the `recovery_code` factor type and its `mfa/recovery_code` AMR method.
            FactorType::RecoveryCode => "mfa/recovery_code",
        }
    }

    /// Whether `method` is one a factor type earns (an MFA method).
    pub fn is_mfa_method(method: &str) -> bool {
        Self::ALL.iter().any(|t| t.amr_method() == method)
    }
}

#[cfg(test)]
mod tests {
    use super::FactorType;

    #[test]
    fn labels_round_trip_and_methods_are_distinct() {
        for t in FactorType::ALL {
            assert_eq!(FactorType::from_sql_name(t.sql_name()), Some(t));
            assert!(FactorType::is_mfa_method(t.amr_method()));
        }
        assert_eq!(FactorType::from_sql_name("sms"), None);
        assert!(!FactorType::is_mfa_method("password"));
        let mut methods: Vec<_> = FactorType::ALL.iter().map(|t| t.amr_method()).collect();
        methods.dedup();
        assert_eq!(methods.len(), 4);
    }
}
