//! Lines parsed on a UDP receive thread (`listen.udp.parse_on_receive`), so that the one
//! aggregator only applies them.
//!
//! A [`Parsed`] batch owns its bytes and the accepted [`Line`]s that borrow them (a
//! `self_cell`, so no unsafe code of ours), in the order they came; the rejected lines are only
//! counted, by reason, since the aggregator does nothing else with them. Which lines are
//! rejected is decided by the aggregator's own rule ([`crate::aggregate::check`]), so a line
//! counts the same wherever it was parsed.
//!
//! A parsed line costs `size_of::<Line>()` bytes beside its text (see [`LINE_BYTES`]), so a
//! batch of short lines weighs several times its raw size. The queue bounds batches, not bytes,
//! so the parsed lines in flight have a budget of their own ([`ParseBudget`]): as many bytes as
//! the datagram queue can hold raw. A batch that would go past it is sent unparsed, and the
//! aggregator parses it as it does without the option: nothing is lost, and the queue holds at
//! most twice what it holds without the option.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use heartwire_proto::{ErrorKind, Line};

/// The accepted lines of a batch, borrowing its bytes.
type Accepted<'a> = Vec<Line<'a>>;

self_cell::self_cell!(
    /// The bytes of a batch and its accepted lines.
    struct Cell {
        owner: Vec<u8>,
        #[covariant]
        dependent: Accepted,
    }
    impl {Debug}
);

/// What one parsed line costs beside its text: the size of a [`Line`] (the largest variant, an
/// event, is a dozen slices).
pub const LINE_BYTES: usize = std::mem::size_of::<Line<'static>>();

/// The lines of a batch, parsed: the accepted ones in their order, the rejected ones counted.
#[derive(Debug)]
pub struct Parsed {
    cell: Cell,
    rejected: [u64; ErrorKind::ALL.len()],
    // Returned to the budget when the batch is dropped (applied, or dropped at a full queue).
    _lease: Lease,
}

impl Parsed {
    /// Parses `data` (`\n`-separated lines) if the budget has room for its lines; gives `data`
    /// back otherwise.
    pub fn within(data: Vec<u8>, budget: &Arc<ParseBudget>) -> Result<Parsed, Vec<u8>> {
        // At most one line per `\n`, and one after the last: allocated once, exactly this size.
        let most =
            memchr::memchr_iter(b'\n', &data).count() + usize::from(data.last() != Some(&b'\n'));
        match budget.take(most * LINE_BYTES) {
            Some(lease) => Ok(Parsed::parse(data, most, lease)),
            None => Err(data),
        }
    }

    /// Parses `data` outside any budget: for tests.
    #[cfg(test)]
    pub fn unbounded(data: Vec<u8>) -> Parsed {
        let most = memchr::memchr_iter(b'\n', &data).count() + 1;
        Parsed::parse(
            data,
            most,
            Lease {
                budget: None,
                bytes: 0,
            },
        )
    }

    fn parse(data: Vec<u8>, most: usize, lease: Lease) -> Parsed {
        let mut rejected = [0; ErrorKind::ALL.len()];
        let cell = Cell::new(data, |data| {
            let mut accepted = Vec::with_capacity(most);
            for line in heartwire_proto::lines(data) {
                match crate::aggregate::check(line) {
                    Ok(line) => accepted.push(line),
                    Err(kind) => rejected[kind.index()] += 1,
                }
            }
            accepted
        });
        Parsed {
            cell,
            rejected,
            _lease: lease,
        }
    }

    /// The accepted lines, in the order they came.
    pub fn accepted(&self) -> &[Line<'_>] {
        self.cell.borrow_dependent()
    }

    /// The rejected lines, by [`ErrorKind::index`].
    pub fn rejected(&self) -> &[u64; ErrorKind::ALL.len()] {
        &self.rejected
    }

    /// Whether the batch held no bytes.
    pub fn is_empty(&self) -> bool {
        self.cell.borrow_owner().is_empty()
    }
}

/// The bytes that the parsed lines of one listener's batches in flight may take together,
/// shared by its receive threads.
#[derive(Debug)]
pub struct ParseBudget {
    limit: usize,
    used: AtomicUsize,
}

impl ParseBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<ParseBudget> {
        Arc::new(ParseBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Reserves `bytes`, unless that would go past the limit.
    fn take(self: &Arc<ParseBudget>, bytes: usize) -> Option<Lease> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .ok()?;
        Some(Lease {
            budget: Some(Arc::clone(self)),
            bytes,
        })
    }

    /// The bytes reserved now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Bytes reserved from a [`ParseBudget`], returned when dropped.
#[derive(Debug)]
struct Lease {
    budget: Option<Arc<ParseBudget>>,
    bytes: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_lines_keep_their_order_and_rejected_ones_are_counted_by_reason() {
        let parsed = Parsed::unbounded(b"a:1|c\nbogus line\n\nb:-1|c\nhb w\nc:2|g\n".to_vec());
        let names: Vec<_> = parsed
            .accepted()
            .iter()
            .map(|line| match line {
                Line::Metric(metric) => metric.name,
                Line::Heartbeat(heartbeat) => heartbeat.worker,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(names, ["a", "w", "c"]);
        let mut rejected = [0; ErrorKind::ALL.len()];
        rejected[ErrorKind::UnknownVerb.index()] = 1;
        rejected[ErrorKind::NegativeCounter.index()] = 1;
        assert_eq!(parsed.rejected(), &rejected);
    }

    #[test]
    fn a_batch_past_the_budget_comes_back_unparsed_and_a_dropped_one_returns_its_share() {
        let budget = ParseBudget::new(3 * LINE_BYTES);
        let first = Parsed::within(b"a:1|c\nb:1|c\n".to_vec(), &budget).unwrap();
        assert_eq!(budget.used(), 2 * LINE_BYTES);
        let refused = Parsed::within(b"c:1|c\nd:1|c".to_vec(), &budget).unwrap_err();
        assert_eq!(refused, b"c:1|c\nd:1|c");
        drop(first);
        assert_eq!(budget.used(), 0);
        let second = Parsed::within(refused, &budget).unwrap();
        assert_eq!(second.accepted().len(), 2);
    }

    /// `listen.udp.parse_on_receive`'s docs and the README give this cost.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_parsed_line_costs_136_bytes_beside_its_text() {
        assert_eq!(LINE_BYTES, 136);
    }
}
