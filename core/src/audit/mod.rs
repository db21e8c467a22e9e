//! The audit trail's core: what an event is, the bounded queue that holds events between the
//! backend that made them and the background worker that writes them, and the JSON payload
//! of a row. Pure Rust, no pgrx: `src/audit.rs` is the shell that puts the queue in shared
//! memory behind an LWLock, passes times and database OIDs in and runs the writers.
//!
//! An event holds ids, names, counts and outcomes, never a secret, a code, a code hash or a
//! key: its fields are fixed-size and typed ([`Entry`]), and the only free text in it is the
//! caller's role name, the client address and [`Traits`], whose values are integers and
//! short labels the SQL layer chooses.
//!
//! The queue is a fixed array of [`Entry`] slots shared by every database of the server, plus
//! one [`WorkerSlot`] per database that has a worker (a worker is bound to one database):
//! - [`Queue::push`] takes a free slot (the search starts after the last slot it filled, so
//!   it is O(1) while the queue is not nearly full); a full queue counts the event as lost
//!   ([`Queue::take_lost`]) rather than block or fail the caller;
//! - [`Queue::take`] moves up to `max` events of one database out, oldest first;
//! - [`Queue::start_worker`] / [`Queue::worker_exit`] decide, under the same lock as the
//!   events, whether a database needs a worker started and whether its worker may stop: a
//!   worker stops only when the queue holds nothing of its database, so an event pushed
//!   while it stops finds no worker and starts a new one.

use std::fmt::Write as _;

/// Bytes kept of the client address (an inet's text is at most 43 bytes).
pub const IP_LEN: usize = 48;
/// Bytes kept of the caller's role name (NAMEDATALEN - 1 is 63).
pub const ROLE_LEN: usize = 64;
/// Bytes of the traits (small JSON object) of an event.
pub const TRAITS_LEN: usize = 120;
/// Databases that can have a worker at once.
pub const MAX_DATABASES: usize = 16;
/// After this long in the STARTING state without the worker reporting in (e.g. the postmaster
/// had no free worker slot), or RUNNING without a heartbeat (it died without freeing its
/// slot), a worker is assumed gone and another may be started.
pub const START_TIMEOUT_US: i64 = 10_000_000;

macro_rules! labels {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            pub fn from_u8(b: u8) -> Option<$name> {
                $name::ALL.get(usize::from(b)).copied()
            }
        }
    };
}

labels! {
    /// What happened (the `event` column).
    Event {
        FactorEnrolled = "factor_enrolled",
        /// A factor's first successful verification (it becomes verified).
        FactorVerified = "factor_verified",
        FactorUnenrolled = "factor_unenrolled",
        ChallengeCreated = "challenge_created",
        /// A TOTP or phone code checked against a challenge.
        Verification = "verification",
        /// A WebAuthn registration response (an unverified WebAuthn factor's challenge).
        WebauthnRegistration = "webauthn_registration",
        /// A WebAuthn assertion (a verified WebAuthn factor's challenge).
        WebauthnAssertion = "webauthn_assertion",
        RecoveryCodeVerification = "recovery_code_verification",
        /// A failure reached mfa_auth.max_failed_attempts.
        FactorLocked = "factor_locked",
        FactorUnlocked = "factor_unlocked",
        RecoveryCodesGenerated = "recovery_codes_generated",
        RecoveryCodesDeleted = "recovery_codes_deleted",
        /// MFA claims of sessions removed with the factor that granted them.
        ClaimsRemoved = "claims_removed",
        /// auth.rotate_secrets(): secrets re-encrypted with the current key.
        SecretsResealed = "secrets_resealed",
        /// A cleanup of challenges or of the audit trail itself.
        Cleanup = "cleanup",
        /// Events the queue had no room for (their count is in the traits).
        EventsLost = "audit_events_lost",
        /// mfa_auth.verification_hook rejected a verification (the user is signed out).
        VerificationRejected = "verification_rejected",
        /// mfa_auth.enrollment_hook rejected an enrollment.
        EnrollmentRejected = "enrollment_rejected",
        /// A hook failed (raised, answered something else than a decision, timed out).
        HookFailed = "hook_failed",
        /// auth.sign_out_user(): every claim of every session of the user removed.
        UserSignedOut = "user_signed_out",
    }
}

labels! {
    /// How it ended (the `outcome` column).
    Outcome {
        Success = "success",
        /// A wrong code or response: counted against the factor.
        Failure = "failure",
        /// Refused without evaluating a code: the factor is locked.
        Locked = "locked",
        /// Refused: the challenge was already verified, or the TOTP step was already used.
        Replay = "replay",
        /// Refused: the challenge has expired.
        Expired = "expired",
        /// Refused: the challenge was made for another client address.
        IpMismatch = "ip_mismatch",
        /// Refused by a policy hook.
        Rejected = "rejected",
        /// The policy hook failed: refused (fail closed).
        Error = "error",
    }
}

/// Slot states.
const FREE: u8 = 0;
const FILLED: u8 = 1;

const HAS_USER: u8 = 1;
const HAS_FACTOR: u8 = 2;
const HAS_SESSION: u8 = 4;
const HAS_OUTCOME: u8 = 8;
/// The writer also signs the event's user out (removes the claims of every session of
/// theirs, and of the event's session) in the transaction that writes the event.
const SIGN_OUT: u8 = 16;
/// No row for this event (mfa_auth.audit is off): only what the writer does besides (a
/// sign-out, a count).
const NO_ROW: u8 = 32;
/// The writer also writes the failure count this event carries (and its lock) into the row
/// that counts the failures of the event's factor, in the transaction that writes the event:
/// a failure whose transaction rolled back then reaches the table, and so survives a crash
/// and a failover, which shared memory does not.
const COUNTS: u8 = 64;
/// That row is the factor's recovery-code set (auth.mfa_recovery_code_sets), not the factor.
const IN_RECOVERY_SET: u8 = 128;

/// What a failure counted (see [`Entry::counting`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// Failures so far, this one included.
    pub failures: u32,
    /// When this failure locked the factor: until when (Unix microseconds).
    pub locked_until_us: Option<i64>,
    /// Counted in the factor's recovery-code set.
    pub in_recovery_set: bool,
}

/// One event: fixed size, no pointers (it lives in shared memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    state: u8,
    event: u8,
    outcome: u8,
    flags: u8,
    /// The database the event happened in.
    pub database: u32,
    /// With [`COUNTS`]: the failures counted.
    failures: u32,
    /// With [`COUNTS`]: until when this failure locked the factor (Unix microseconds; 0: it did not).
    locked_until_us: i64,
    /// Unix microseconds.
    pub at_us: i64,
    /// Order of pushes (the oldest event is taken first).
    seq: u64,
    /// The row's id (a UUID v7 made when the event happened).
    pub id: [u8; 16],
    user: [u8; 16],
    factor: [u8; 16],
    session: [u8; 16],
    ip_len: u8,
    role_len: u8,
    traits_len: u8,
    factor_type_len: u8,
    ip: [u8; IP_LEN],
    role: [u8; ROLE_LEN],
    traits: [u8; TRAITS_LEN],
    factor_type: [u8; 16],
}

/// Copies as much of `s` as fits, cut at a character boundary; returns the length.
fn put(dst: &mut [u8], s: &str) -> u8 {
    let mut n = s.len().min(dst.len()).min(usize::from(u8::MAX));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    n as u8
}

fn text(src: &[u8], len: u8) -> &str {
    std::str::from_utf8(&src[..usize::from(len)]).unwrap_or("")
}

impl Entry {
    pub const EMPTY: Entry = Entry {
        state: FREE,
        event: 0,
        outcome: 0,
        flags: 0,
        database: 0,
        failures: 0,
        locked_until_us: 0,
        at_us: 0,
        seq: 0,
        id: [0; 16],
        user: [0; 16],
        factor: [0; 16],
        session: [0; 16],
        ip_len: 0,
        role_len: 0,
        traits_len: 0,
        factor_type_len: 0,
        ip: [0; IP_LEN],
        role: [0; ROLE_LEN],
        traits: [0; TRAITS_LEN],
        factor_type: [0; 16],
    };

    pub fn new(event: Event, database: u32, at_us: i64, id: [u8; 16]) -> Entry {
        Entry { state: FILLED, event: event as u8, database, at_us, id, ..Entry::EMPTY }
    }
    pub fn outcome(mut self, o: Outcome) -> Entry {
        self.outcome = o as u8;
        self.flags |= HAS_OUTCOME;
        self
    }
    pub fn user(mut self, u: Option<[u8; 16]>) -> Entry {
        if let Some(u) = u {
            self.user = u;
            self.flags |= HAS_USER;
        }
        self
    }
    pub fn factor(mut self, f: Option<[u8; 16]>) -> Entry {
        if let Some(f) = f {
            self.factor = f;
            self.flags |= HAS_FACTOR;
        }
        self
    }
    pub fn session(mut self, s: Option<[u8; 16]>) -> Entry {
        if let Some(s) = s {
            self.session = s;
            self.flags |= HAS_SESSION;
        }
        self
    }
    pub fn ip(mut self, ip: Option<&str>) -> Entry {
        self.ip_len = ip.map(|ip| put(&mut self.ip, ip)).unwrap_or(0);
        self
    }
    pub fn role(mut self, role: &str) -> Entry {
        self.role_len = put(&mut self.role, role);
        self
    }
    pub fn factor_type(mut self, t: &str) -> Entry {
        self.factor_type_len = put(&mut self.factor_type, t);
        self
    }
    pub fn traits(mut self, t: &Traits) -> Entry {
        self.traits_len = put(&mut self.traits, &t.0);
        self
    }

    /// The writer signs the event's user out when it writes the event; `row`: whether the
    /// event itself is recorded too.
    pub fn signing_out(mut self, row: bool) -> Entry {
        self.flags |= SIGN_OUT;
        if row {
            self
        } else {
            self.without_row()
        }
    }
    /// No row for this event: only what the writer does besides.
    pub fn without_row(mut self) -> Entry {
        self.flags |= NO_ROW;
        self
    }
    /// The writer writes `c` into the row that counts the failures of the event's factor (the
    /// event must have a factor), unless that row changed after the event (a later failure, a
    /// success, an unlock made it newer).
    pub fn counting(mut self, c: Count) -> Entry {
        self.flags |= COUNTS;
        if c.in_recovery_set {
            self.flags |= IN_RECOVERY_SET;
        }
        self.failures = c.failures;
        self.locked_until_us = c.locked_until_us.unwrap_or(0);
        self
    }
    /// What [`Entry::counting`] gave it.
    pub fn count_of(&self) -> Option<Count> {
        (self.flags & COUNTS != 0 && self.flags & HAS_FACTOR != 0).then_some(Count {
            failures: self.failures,
            locked_until_us: (self.locked_until_us != 0).then_some(self.locked_until_us),
            in_recovery_set: self.flags & IN_RECOVERY_SET != 0,
        })
    }
    pub fn signs_out(&self) -> bool {
        self.flags & SIGN_OUT != 0
    }
    pub fn has_row(&self) -> bool {
        self.flags & NO_ROW == 0
    }
    /// The order of its push into the queue (0 before).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn event(&self) -> Option<Event> {
        Event::from_u8(self.event)
    }
    pub fn outcome_of(&self) -> Option<Outcome> {
        (self.flags & HAS_OUTCOME != 0).then(|| Outcome::from_u8(self.outcome)).flatten()
    }
    pub fn user_of(&self) -> Option<[u8; 16]> {
        (self.flags & HAS_USER != 0).then_some(self.user)
    }
    pub fn factor_of(&self) -> Option<[u8; 16]> {
        (self.flags & HAS_FACTOR != 0).then_some(self.factor)
    }
    pub fn session_of(&self) -> Option<[u8; 16]> {
        (self.flags & HAS_SESSION != 0).then_some(self.session)
    }
    pub fn ip_of(&self) -> Option<&str> {
        (self.ip_len > 0).then(|| text(&self.ip, self.ip_len))
    }
    pub fn role_of(&self) -> &str {
        text(&self.role, self.role_len)
    }
    pub fn factor_type_of(&self) -> Option<&str> {
        (self.factor_type_len > 0).then(|| text(&self.factor_type, self.factor_type_len))
    }
    /// The traits object's members, without braces ("" when there are none).
    pub fn traits_of(&self) -> &str {
        text(&self.traits, self.traits_len)
    }

    /// The row's `payload`, in the shape of Supabase Auth's audit_log_entries.payload
    /// (action, actor_id, actor_username, log_type, traits) plus the typed columns' values.
    pub fn payload(&self) -> String {
        self.payload_value().to_string()
    }

    /// [`Entry::payload`] as a JSON value (what the table stores, without a text round trip).
    pub fn payload_value(&self) -> serde_json::Value {
        let mut p = serde_json::Map::new();
        let event = self.event().map(Event::name).unwrap_or("unknown");
        p.insert("action".into(), event.into());
        p.insert("log_type".into(), "mfa".into());
        if let Some(o) = self.outcome_of() {
            p.insert("outcome".into(), o.name().into());
        }
        if let Some(u) = self.user_of() {
            p.insert("actor_id".into(), uuid::Uuid::from_bytes(u).to_string().into());
        }
        p.insert("actor_username".into(), self.role_of().into());
        if let Some(f) = self.factor_of() {
            p.insert("factor_id".into(), uuid::Uuid::from_bytes(f).to_string().into());
        }
        if let Some(t) = self.factor_type_of() {
            p.insert("factor_type".into(), t.into());
        }
        if let Some(s) = self.session_of() {
            p.insert("session_id".into(), uuid::Uuid::from_bytes(s).to_string().into());
        }
        let traits: serde_json::Value = serde_json::from_str(&format!("{{{}}}", self.traits_of()))
            .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new()));
        p.insert("traits".into(), traits);
        serde_json::Value::Object(p)
    }
}

/// An event's traits: integer counts and short labels (never free text from a caller), kept
/// as JSON object members; what does not fit in [`TRAITS_LEN`] bytes is left out whole.
#[derive(Default, Clone, Debug)]
pub struct Traits(String);

impl Traits {
    pub fn new() -> Traits {
        Traits::default()
    }
    fn member(mut self, m: String) -> Traits {
        let sep = usize::from(!self.0.is_empty());
        if self.0.len() + sep + m.len() <= TRAITS_LEN {
            if sep == 1 {
                self.0.push(',');
            }
            self.0.push_str(&m);
        }
        self
    }
    pub fn int(self, key: &'static str, v: i64) -> Traits {
        self.member(format!("\"{key}\":{v}"))
    }
    /// A label: only [A-Za-z0-9_.:-] are kept, so it needs no escaping.
    pub fn label(self, key: &'static str, v: &str) -> Traits {
        let mut s = String::with_capacity(v.len().min(40));
        for c in v.chars().filter(|c| c.is_ascii_alphanumeric() || "_.:-".contains(*c)).take(40) {
            let _ = s.write_char(c);
        }
        self.member(format!("\"{key}\":\"{s}\""))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

mod losses;
mod queue;
mod saved;
pub use losses::*;
pub use queue::*;
pub use saved::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(db: u32, n: u8) -> Entry {
        Entry::new(Event::Verification, db, i64::from(n), [n; 16]).outcome(Outcome::Failure)
    }

    #[test]
    fn labels_round_trip() {
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(Event::from_u8(i as u8), Some(*e));
        }
        assert_eq!(Event::from_u8(200), None);
        assert_eq!(Outcome::from_u8(Outcome::Replay as u8), Some(Outcome::Replay));
    }

    #[test]
    fn push_take_in_order_per_database() {
        let mut q: Box<Queue<8>> = Box::default();
        for n in 0..4 {
            assert!(q.push(&ev(1, n)));
            assert!(q.push(&ev(2, n + 10)));
        }
        let mut out = Vec::new();
        assert_eq!(q.take(1, 3, &mut out), 3);
        assert_eq!(out.iter().map(|e| e.id[0]).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(q.has(1) && q.has(2));
        // The freed slots are reused; the order of the rest is kept.
        assert!(q.push(&ev(1, 7)));
        out.clear();
        q.take(1, 10, &mut out);
        assert_eq!(out.iter().map(|e| e.id[0]).collect::<Vec<_>>(), vec![3, 7]);
        assert!(!q.has(1));
        assert_eq!(q.usage().0, 4);
    }

    #[test]
    fn a_push_is_written_once_its_worker_committed_it() {
        let mut q: Box<Queue<8>> = Box::default();
        let e = ev(1, 1).signing_out(false);
        assert!(e.signs_out() && !e.has_row() && ev(1, 1).has_row());
        assert_eq!(q.start_worker(1, 0), Start::StartOne);
        let seq = q.push_seq(&e).expect("room");
        assert!(!q.is_written(1, seq), "queued");
        assert!(q.worker_started(1, 42, 0));
        let mut out = Vec::new();
        q.take(1, 10, &mut out);
        assert_eq!(out[0].seq(), seq);
        assert!(!q.is_written(1, seq), "taken, not committed");
        q.mark_written(1, seq);
        assert!(q.is_written(1, seq));
        // A later push is not written by an earlier commit; with no worker left, it is.
        let later = q.push_seq(&ev(1, 2)).unwrap();
        q.take(1, 10, &mut out);
        assert!(!q.is_written(1, later));
        assert!(q.worker_exit(1, 42, false));
        assert!(q.is_written(1, later));
    }

    #[test]
    fn a_full_queue_counts_what_it_loses() {
        let mut q: Box<Queue<4>> = Box::default();
        for n in 0..6 {
            q.push(&ev(1, n));
        }
        assert_eq!(q.usage(), (4, 4, 2));
        // Counted in their database, by kind and outcome, not in the global count.
        assert_eq!(q.take_lost(), 0);
        let l = q.take_losses(1).expect("database 1's losses");
        assert_eq!(l.kinds(), vec![(Event::Verification, Some(Outcome::Failure), 2)]);
        assert_eq!(q.take_losses(1), None);
        assert_eq!(q.usage(), (4, 4, 0));
        assert_eq!(q.discard(1), 4);
        assert_eq!(q.usage().0, 0);
    }

    #[test]
    fn losses_are_kept_per_database_and_kind() {
        let mut q: Box<Queue<1>> = Box::default();
        assert!(q.push(&ev(1, 0)));
        q.push(&ev(2, 1));
        q.push(&Entry::new(Event::ChallengeCreated, 2, 0, [9; 16]));
        q.lose_kind(3, Event::FactorEnrolled as u8, None, 5);
        let two = q.take_losses(2).unwrap();
        assert_eq!(two.total(), 2);
        assert_eq!(
            two.kinds(),
            vec![(Event::ChallengeCreated, None, 1), (Event::Verification, Some(Outcome::Failure), 1)]
        );
        // A database with losses and no queued event still needs its writer.
        assert_eq!(q.start_worker(1, 0), Start::StartOne);
        assert_eq!(q.orphaned(), Some(3));
        assert!(q.has(3) && !q.has(2));
        // More databases than slots: the rest are counted without their database.
        for db in 10..10 + MAX_DATABASES as u32 {
            q.lose_kind(db, Event::Verification as u8, Some(Outcome::Failure as u8), 1);
        }
        assert_eq!(q.take_lost(), 1);
    }

    #[test]
    fn what_a_shutdown_saves_reads_back_the_same() {
        let e = Entry::new(Event::FactorLocked, 7, 123, [1; 16])
            .outcome(Outcome::Failure)
            .user(Some([2; 16]))
            .ip(Some("192.0.2.1"))
            .role("app")
            .factor_type("totp")
            .traits(&Traits::new().int("failed_attempts", 5))
            .factor(Some([3; 16]))
            .counting(Count { failures: 5, locked_until_us: Some(900), in_recovery_set: true })
            .without_row();
        let mut l = Losses::default();
        l.count(Event::Verification as u8, Some(Outcome::Failure as u8), 3);
        l.count(Event::ChallengeCreated as u8, None, 2);
        l.database = 7;
        let bytes = encode_saved(&[e, ev(8, 1)], &[l]);
        let (entries, losses) = decode_saved(&bytes).expect("reads back");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].payload(), e.payload());
        assert_eq!((entries[0].database, entries[0].at_us, entries[0].id), (7, 123, [1; 16]));
        assert_eq!(losses, vec![l]);
        assert_eq!(
            entries[0].count_of(),
            Some(Count { failures: 5, locked_until_us: Some(900), in_recovery_set: true })
        );
        assert!(!entries[0].has_row() && entries[1].count_of().is_none() && entries[1].has_row());
        // Anything else is not used: cut short, another magic, bytes left over.
        assert!(decode_saved(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_saved(b"MFAAUDQ0").is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_saved(&longer).is_none());
    }

    #[test]
    fn the_reserved_writer_counts_its_tries_per_database() {
        let mut q: Box<Queue<2>> = Box::default();
        assert_eq!(q.fallback_try(5), 1);
        assert_eq!(q.fallback_try(5), 2);
        assert!(q.worker_started(5, 10, 0));
        assert_eq!(q.fallback_try(5), 1, "it reported in: the count starts again");
        assert_eq!(q.fallback_try(6), 1);
    }

    #[test]
    fn a_shutdown_drains_and_a_start_restores() {
        let mut q: Box<Queue<4>> = Box::default();
        for n in 0..6 {
            q.push(&ev(1 + u32::from(n % 2), n));
        }
        let (entries, losses) = q.drain_all();
        assert_eq!(entries.iter().map(|e| e.id[0]).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(losses.iter().map(|l| (l.database, l.total())).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
        assert_eq!(q.usage(), (0, 4, 0));
        let mut r: Box<Queue<3>> = Box::default();
        r.restore(&entries, &losses);
        assert_eq!(r.usage().0, 3);
        assert_eq!(r.take_losses(2).unwrap().total(), 2, "the one that found no room is counted");
        assert_eq!(r.orphaned(), Some(1));
    }

    #[test]
    fn one_worker_per_database_and_none_stops_with_work_left() {
        let mut q: Box<Queue<4>> = Box::default();
        assert_eq!(q.start_worker(5, 0), Start::StartOne);
        assert_eq!(q.start_worker(5, 1), Start::Running);
        assert!(q.worker_started(5, 100, 2));
        assert!(!q.worker_started(5, 101, 3), "a second worker for the same database must exit");
        q.push(&ev(5, 1));
        assert!(!q.worker_exit(5, 100, false));
        assert!(q.heartbeat(5, 100, 3));
        // A worker whose heartbeat stopped is replaced, and the old one learns it must exit.
        assert_eq!(q.start_worker(5, 3 + START_TIMEOUT_US + 1), Start::StartOne);
        assert!(!q.heartbeat(5, 100, 3 + START_TIMEOUT_US + 2));
        assert!(q.worker_started(5, 100, 3 + START_TIMEOUT_US + 3));
        let mut out = Vec::new();
        q.take(5, 10, &mut out);
        assert!(q.worker_exit(5, 100, false));
        assert_eq!(q.start_worker(5, 4), Start::StartOne);
        // A start that never reported in is retried after the timeout.
        assert_eq!(q.start_worker(5, 5), Start::Running);
        assert_eq!(q.start_worker(5, 5 + START_TIMEOUT_US + 1), Start::StartOne);
        q.start_failed(5);
        assert_eq!(q.workers().count(), 0);
        for db in 0..MAX_DATABASES as u32 {
            assert_eq!(q.start_worker(100 + db, 0), Start::StartOne);
        }
        assert_eq!(q.start_worker(999, 0), Start::NoSlot);
    }

    #[test]
    fn events_without_a_worker_are_found() {
        let mut q: Box<Queue<8>> = Box::default();
        assert_eq!(q.orphaned(), None);
        // Database 7's writer could not be started (no slot in the postmaster).
        q.push(&ev(7, 1));
        assert_eq!(q.start_worker(7, 0), Start::StartOne);
        assert_eq!(q.orphaned(), None, "a start is under way");
        assert!(!q.may_have_orphans());
        q.start_failed(7);
        assert!(q.may_have_orphans());
        assert_eq!(q.orphaned(), Some(7));
        // Database 8 has a writer, 9 none: 7's event is still the oldest without one.
        q.push(&ev(9, 2));
        assert_eq!(q.start_worker(8, 0), Start::StartOne);
        q.push(&ev(8, 3));
        assert_eq!(q.orphaned(), Some(7));
        let mut out = Vec::new();
        q.take(7, 10, &mut out);
        assert_eq!(q.orphaned(), Some(9));
        assert_eq!(q.start_worker(9, 0), Start::StartOne);
        assert_eq!(q.orphaned(), None);
        assert!(!q.may_have_orphans());
    }

    #[test]
    fn payload_holds_the_typed_fields_and_traits() {
        let e = Entry::new(Event::FactorLocked, 1, 0, [1; 16])
            .outcome(Outcome::Failure)
            .user(Some([2; 16]))
            .factor(Some([3; 16]))
            .ip(Some("192.0.2.1"))
            .role("app\"role")
            .factor_type("totp")
            .traits(&Traits::new().int("failed_attempts", 5).label("reason", "wrong\"code\\x"));
        let p: serde_json::Value = serde_json::from_str(&e.payload()).unwrap();
        assert_eq!(p["action"], "factor_locked");
        assert_eq!(p["outcome"], "failure");
        assert_eq!(p["actor_id"], "02020202-0202-0202-0202-020202020202");
        assert_eq!(p["actor_username"], "app\"role");
        assert_eq!(p["factor_type"], "totp");
        assert_eq!(p["traits"]["failed_attempts"], 5);
        assert_eq!(p["traits"]["reason"], "wrongcodex");
        assert!(p.get("session_id").is_none());
        assert_eq!(e.ip_of(), Some("192.0.2.1"));
    }

    #[test]
    fn a_file_saved_by_0_3_0_reads_back_without_counts() {
        // 0.3.0's layout: no failures / locked_until_us after at_us.
        let e = Entry::new(Event::Verification, 7, 123, [1; 16]).outcome(Outcome::Failure).factor(Some([3; 16]));
        let mut old = b"MFAAUDQ1".to_vec();
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&0u32.to_le_bytes());
        old.extend_from_slice(&[e.event, e.outcome, e.flags, 0, 0, 0, 0]);
        old.extend_from_slice(&7u32.to_le_bytes());
        old.extend_from_slice(&123i64.to_le_bytes());
        for part in [[1u8; 16], [0; 16], [3; 16], [0; 16]] {
            old.extend_from_slice(&part);
        }
        old.extend(std::iter::repeat_n(0u8, IP_LEN + ROLE_LEN + TRAITS_LEN + 16));
        let (entries, losses) = decode_saved(&old).expect("0.3.0's file reads back");
        assert!(losses.is_empty());
        assert_eq!(entries[0].payload(), e.payload());
        assert_eq!(entries[0].count_of(), None);
    }

    #[test]
    fn a_count_needs_a_factor_and_says_where_it_is_counted() {
        let c = Count { failures: 2, locked_until_us: None, in_recovery_set: false };
        assert_eq!(Entry::new(Event::Verification, 1, 0, [0; 16]).counting(c).count_of(), None);
        let e = Entry::new(Event::Verification, 1, 0, [0; 16]).factor(Some([9; 16])).counting(c);
        assert_eq!(e.count_of(), Some(c));
        assert!(e.has_row());
    }

    #[test]
    fn requeued_events_are_not_counted_twice_and_what_finds_no_room_is_lost() {
        let mut q: Box<Queue<4>> = Box::default();
        for n in 0..3 {
            assert!(q.push(&ev(1, n)));
        }
        let mut batch = Vec::new();
        q.take(1, 3, &mut batch);
        assert!(q.push(&ev(2, 9)) && q.push(&ev(2, 10)));
        // The writer of 1 could not write its batch: back to the queue, one without room.
        q.requeue(&batch);
        let (used, pushed, _) = q.usage();
        assert_eq!((used, pushed), (4, 5));
        let l = q.take_losses(1).expect("counted in its database");
        assert_eq!(l.kinds(), vec![(Event::Verification, Some(Outcome::Failure), 1)]);
        assert!(q.may_have_orphans());
        let mut out = Vec::new();
        q.take(1, 8, &mut out);
        assert_eq!(out.iter().map(|e| e.id[0]).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_traits_stay_json() {
        let role = "é".repeat(100);
        let e = Entry::new(Event::Cleanup, 1, 0, [0; 16]).role(&role);
        assert!(e.role_of().len() <= ROLE_LEN && e.role_of().chars().all(|c| c == 'é'));
        let mut t = Traits::new();
        for _ in 0..50 {
            t = t.int("challenges", i64::MAX);
        }
        assert!(t.as_str().len() <= TRAITS_LEN);
        let e = e.traits(&t);
        let p: serde_json::Value = serde_json::from_str(&e.payload()).unwrap();
        assert!(p["traits"].is_object());
    }
}
