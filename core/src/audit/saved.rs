//! The file the queue is saved to at a clean shutdown and restored from at start-up.

use super::*;

/// The file a clean shutdown saves the queue in: magic, version, then the events and the
/// losses, field by field, little-endian (the same server reads it at its next start, or the
/// next version's after an update: it reads both).
const SAVED_MAGIC: &[u8; 8] = b"MFAAUDQ2";
/// 0.3.0's file: the events without their count (failures, locked_until_us).
const SAVED_MAGIC_V1: &[u8; 8] = b"MFAAUDQ1";

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}
fn take_u32(b: &mut &[u8]) -> Option<u32> {
    take(b, 4).map(|x| u32::from_le_bytes(x.try_into().expect("4 bytes")))
}

/// What [`Queue::drain_all`] took, as bytes for the file.
pub fn encode_saved(entries: &[Entry], losses: &[Losses]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + std::mem::size_of_val(entries));
    out.extend_from_slice(SAVED_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(losses.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&[e.event, e.outcome, e.flags, e.ip_len, e.role_len, e.traits_len, e.factor_type_len]);
        out.extend_from_slice(&e.database.to_le_bytes());
        out.extend_from_slice(&e.at_us.to_le_bytes());
        out.extend_from_slice(&e.failures.to_le_bytes());
        out.extend_from_slice(&e.locked_until_us.to_le_bytes());
        for part in [&e.id, &e.user, &e.factor, &e.session] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&e.ip);
        out.extend_from_slice(&e.role);
        out.extend_from_slice(&e.traits);
        out.extend_from_slice(&e.factor_type);
    }
    for l in losses {
        out.extend_from_slice(&l.database.to_le_bytes());
        for (event, outcome, n) in l.kinds() {
            out.extend_from_slice(&[event as u8, outcome.map_or(u8::MAX, |o| o as u8)]);
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&[u8::MAX, u8::MAX]); // end of this database's kinds
    }
    out
}

/// The inverse of [`encode_saved`]; None for anything else (a file of another version, cut
/// short, or not ours): its content is then not used.
pub fn decode_saved(mut b: &[u8]) -> Option<(Vec<Entry>, Vec<Losses>)> {
    let v2 = match take(&mut b, 8)? {
        m if m == SAVED_MAGIC => true,
        m if m == SAVED_MAGIC_V1 => false,
        _ => return None,
    };
    let (n, m) = (take_u32(&mut b)? as usize, take_u32(&mut b)? as usize);
    let mut entries = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let h = take(&mut b, 7)?;
        let mut e = Entry { state: FILLED, ..Entry::EMPTY };
        (e.event, e.outcome, e.flags) = (h[0], h[1], h[2]);
        Event::from_u8(e.event)?;
        e.ip_len = h[3].min(IP_LEN as u8);
        e.role_len = h[4].min(ROLE_LEN as u8);
        e.traits_len = h[5].min(TRAITS_LEN as u8);
        e.factor_type_len = h[6].min(16);
        e.database = take_u32(&mut b)?;
        e.at_us = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        if v2 {
            e.failures = take_u32(&mut b)?;
            e.locked_until_us = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        } else {
            e.flags &= !(COUNTS | IN_RECOVERY_SET);
        }
        for part in [&mut e.id, &mut e.user, &mut e.factor, &mut e.session] {
            part.copy_from_slice(take(&mut b, 16)?);
        }
        e.ip.copy_from_slice(take(&mut b, IP_LEN)?);
        e.role.copy_from_slice(take(&mut b, ROLE_LEN)?);
        e.traits.copy_from_slice(take(&mut b, TRAITS_LEN)?);
        e.factor_type.copy_from_slice(take(&mut b, 16)?);
        entries.push(e);
    }
    let mut losses = Vec::with_capacity(m.min(MAX_DATABASES));
    for _ in 0..m {
        let mut l = Losses { database: take_u32(&mut b)?, ..Losses::EMPTY };
        loop {
            let k = take(&mut b, 2)?;
            if k == [u8::MAX, u8::MAX] {
                break;
            }
            let outcome = (k[1] != u8::MAX).then_some(k[1]);
            l.add(k[0], outcome, take_u32(&mut b)?);
        }
        losses.push(l);
    }
    b.is_empty().then_some((entries, losses))
}
