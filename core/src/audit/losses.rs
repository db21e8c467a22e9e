//! The events the queue had no room for, counted per database, event and outcome.

use super::*;

/// Event kinds a loss is counted by (room for more than [`Event::ALL`]).
pub const LOSS_EVENTS: usize = 24;
/// Outcomes a loss is counted by: index 0 for none, then [`Outcome::ALL`].
pub const LOSS_OUTCOMES: usize = 8;

/// The events of one database that were lost (no room in the queue, over a transaction's
/// cap, or not writable at a shutdown), counted by kind and outcome until its writer records
/// them, in that database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Losses {
    pub database: u32,
    pub(super) total: u32,
    pub(super) counts: [[u32; LOSS_OUTCOMES]; LOSS_EVENTS],
}

impl Default for Losses {
    fn default() -> Self {
        Losses::EMPTY
    }
}

impl Losses {
    pub(super) const EMPTY: Losses = Losses { database: 0, total: 0, counts: [[0; LOSS_OUTCOMES]; LOSS_EVENTS] };

    pub fn total(&self) -> u32 {
        self.total
    }

    /// (event, outcome, how many) for every kind counted, in the order of the labels.
    pub fn kinds(&self) -> Vec<(Event, Option<Outcome>, u32)> {
        let mut out = Vec::new();
        for (e, row) in self.counts.iter().enumerate() {
            for (o, &n) in row.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                if let Some(event) = Event::from_u8(e as u8) {
                    let outcome = if o == 0 { None } else { Outcome::from_u8((o - 1) as u8) };
                    out.push((event, outcome, n));
                }
            }
        }
        out
    }

    /// Counts `n` events of kind `event` (an [`Event`] as u8) and `outcome`.
    pub fn count(&mut self, event: u8, outcome: Option<u8>, n: u32) {
        self.add(event, outcome, n);
    }

    pub(super) fn add(&mut self, event: u8, outcome: Option<u8>, n: u32) {
        let e = usize::from(event).min(LOSS_EVENTS - 1);
        let o = outcome.map_or(0, |o| (usize::from(o) + 1).min(LOSS_OUTCOMES - 1));
        self.counts[e][o] = self.counts[e][o].saturating_add(n);
        self.total = self.total.saturating_add(n);
    }
}
