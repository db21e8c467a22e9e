//! What a verification decides from the state of its locked rows, before and after the
//! response is evaluated: whether it is refused without evaluating anything (and which
//! refusal wins when several apply), and how an evaluated attempt ends. The extension's
//! pipeline (src/verification/) reads the rows, asks these, and records what they say.

use crate::audit::Outcome;

/// The state of a verification's rows that can refuse it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The factor is locked: its row's lock has not run out, or shared memory holds a lock a
    /// rolled-back failure left.
    pub locked: bool,
    /// The challenge was verified already.
    pub challenge_verified: bool,
    /// The challenge is older than mfa_auth.challenge_expiry.
    pub expired: bool,
    /// The challenge was made for another client address than the one given.
    pub ip_mismatch: bool,
}

/// Why an attempt is refused before its response is evaluated (nothing is counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Locked,
    AlreadyVerified,
    Expired,
    IpMismatch,
}

impl Refusal {
    /// The audit outcome of this refusal.
    pub fn outcome(self) -> Outcome {
        match self {
            Refusal::Locked => Outcome::Locked,
            Refusal::AlreadyVerified => Outcome::Replay,
            Refusal::Expired => Outcome::Expired,
            Refusal::IpMismatch => Outcome::IpMismatch,
        }
    }
}

/// The first refusal that applies. Order matters: a locked factor refuses everything (so a
/// locked factor tells nothing about its challenges), then the challenge's own state.
pub fn refusal(s: &State) -> Option<Refusal> {
    if s.locked {
        Some(Refusal::Locked)
    } else if s.challenge_verified {
        Some(Refusal::AlreadyVerified)
    } else if s.expired {
        Some(Refusal::Expired)
    } else if s.ip_mismatch {
        Some(Refusal::IpMismatch)
    } else {
        None
    }
}

/// How an evaluated attempt ends: `ok` is a success; a wrong response is a failure, and a
/// TOTP code of an already accepted step a replay (both counted).
pub fn outcome(ok: bool, replay: bool) -> Outcome {
    match (ok, replay) {
        (true, _) => Outcome::Success,
        (false, true) => Outcome::Replay,
        (false, false) => Outcome::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_wins_over_every_state_of_the_challenge() {
        let all = State { locked: true, challenge_verified: true, expired: true, ip_mismatch: true };
        assert_eq!(refusal(&all), Some(Refusal::Locked));
        assert_eq!(refusal(&State { locked: false, ..all }), Some(Refusal::AlreadyVerified));
        assert_eq!(refusal(&State { locked: false, challenge_verified: false, ..all }), Some(Refusal::Expired));
        assert_eq!(refusal(&State { ip_mismatch: true, ..State::default() }), Some(Refusal::IpMismatch));
        assert_eq!(refusal(&State::default()), None);
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(true, false), Outcome::Success);
        assert_eq!(outcome(false, false), Outcome::Failure);
        assert_eq!(outcome(false, true), Outcome::Replay);
        assert_eq!(Refusal::AlreadyVerified.outcome(), Outcome::Replay);
    }
}
