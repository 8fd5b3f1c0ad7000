//! Exact accounting of what one subscriber received from each publisher: every sequence
//! number is remembered in a bitmap, so loss, duplicates and reordering are counted, not
//! estimated.

/// Per-publisher receive state of one subscriber.
#[derive(Debug, Default, Clone)]
struct Stream {
    /// Bit `seq` is set once `seq` arrived.
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    /// Arrivals with a lower number than one already received (late, not duplicated).
    reordered: u64,
    /// One past the highest number received.
    next: u64,
}

/// What one subscriber received, indexed by publisher number.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    streams: Vec<Stream>,
    /// Stamps that named no publisher of this run.
    pub foreign: u64,
}

/// Totals over publishers (and, summed, over subscribers).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub unique: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.unique += o.unique;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
    }
}

impl Tracker {
    /// A tracker for publishers `0..publishers`.
    pub fn new(publishers: usize) -> Self {
        Self {
            streams: vec![Stream::default(); publishers],
            foreign: 0,
        }
    }

    /// Records one arrival; returns whether it was new (not a duplicate).
    pub fn record(&mut self, publisher: u32, seq: u64) -> bool {
        let Some(s) = self.streams.get_mut(publisher as usize) else {
            self.foreign += 1;
            return false;
        };
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= s.seen.len() {
            // Grows by doubling, so the bitmap costs amortised O(1) per message.
            s.seen.resize((word + 1).next_power_of_two(), 0);
        }
        if s.seen[word] & bit != 0 {
            s.duplicates += 1;
            return false;
        }
        s.seen[word] |= bit;
        s.unique += 1;
        if seq < s.next {
            s.reordered += 1;
        } else {
            s.next = seq + 1;
        }
        true
    }

    /// Totals, given how many messages each publisher this subscriber listens to sent
    /// (`sent[p]`; `None` for publishers it does not expect).
    pub fn counts(&self, sent: impl Fn(usize) -> Option<u64>) -> Counts {
        let mut total = Counts::default();
        for (p, s) in self.streams.iter().enumerate() {
            let expected = sent(p).unwrap_or(0);
            total += Counts {
                unique: s.unique,
                lost: expected.saturating_sub(s.unique),
                duplicates: s.duplicates,
                reordered: s.reordered,
            };
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_duplicates_and_reordering_exactly() {
        let mut t = Tracker::new(2);
        for seq in [0, 1, 3, 2, 2, 5, 200] {
            t.record(0, seq);
        }
        for seq in 0..10 {
            t.record(1, seq);
        }
        assert!(!t.record(7, 0), "unknown publisher");
        assert_eq!(t.foreign, 1);
        let sent = [201, 10];
        let c = t.counts(|p| sent.get(p).copied());
        assert_eq!(
            c,
            Counts {
                unique: 16,
                // 0..=200 from publisher 0, of which 0,1,2,3,5,200 arrived.
                lost: 201 - 6,
                duplicates: 1,
                reordered: 1,
            }
        );
    }
}
