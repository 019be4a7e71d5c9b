//! A pool of RTP/RTCP port pairs from a configured range.
//!
//! Every pair is an even RTP port and the odd port above it for RTCP (RFC 3550 section 11).
//! A leg that negotiates rtcp-mux still holds the whole pair, so that a later re-offer
//! without rtcp-mux needs no second allocation. Released pairs go to the back of the free
//! queue, so a port is reused as late as possible (stray packets of a finished call do not
//! reach the next one).
//!
//! Invariant: a pair is either free or allocated, never both, and never handed out twice;
//! free + allocated = capacity.

use std::collections::{BTreeSet, VecDeque};

/// An RTP port and its RTCP companion (`rtcp == rtp + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    /// Even RTP port.
    pub rtp: u16,
    /// RTCP port, `rtp + 1`.
    pub rtcp: u16,
}

/// The configured range cannot give a single pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("port range {first}..={last} holds no even/odd pair")]
pub struct EmptyPortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range.
    pub last: u16,
}

/// Refusal: every pair is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("port pool exhausted ({capacity} pairs in use)")]
pub struct PoolExhausted {
    /// Pairs in the pool.
    pub capacity: usize,
}

/// Refusal: the port was not allocated from this pool (double release or a stranger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("port {0} is not allocated from this pool")]
pub struct NotAllocated(pub u16);

/// The pool.
#[derive(Debug, Clone)]
pub struct PortPool {
    first_rtp: u16,
    last_rtp: u16,
    free: VecDeque<u16>,
    allocated: BTreeSet<u16>,
}

impl PortPool {
    /// A pool of every even port `p` with `first <= p` and `p + 1 <= last`.
    pub fn new(first: u16, last: u16) -> Result<Self, EmptyPortRange> {
        let first_rtp = first
            .checked_add(first % 2)
            .ok_or(EmptyPortRange { first, last })?;
        let last_rtp = match last.checked_sub(1) {
            Some(top) if top >= first_rtp => top - top % 2,
            _ => return Err(EmptyPortRange { first, last }),
        };
        if last_rtp < first_rtp {
            return Err(EmptyPortRange { first, last });
        }
        let free: VecDeque<u16> = (first_rtp..=last_rtp).step_by(2).collect();
        Ok(PortPool {
            first_rtp,
            last_rtp,
            free,
            allocated: BTreeSet::new(),
        })
    }

    /// Hands out the least recently used free pair.
    pub fn allocate(&mut self) -> Result<PortPair, PoolExhausted> {
        let rtp = self.free.pop_front().ok_or(PoolExhausted {
            capacity: self.capacity(),
        })?;
        let fresh = self.allocated.insert(rtp);
        assert!(fresh, "port {rtp} was on the free list while allocated");
        Ok(PortPair { rtp, rtcp: rtp + 1 })
    }

    /// The pair the next `allocate` hands out, if any.
    pub fn next_free(&self) -> Option<PortPair> {
        self.free
            .front()
            .map(|&rtp| PortPair { rtp, rtcp: rtp + 1 })
    }

    /// Moves the next free pair to the back of the free queue: another process holds one of
    /// its ports, so it is tried again only after every other free pair. The pair stays free.
    pub fn defer_next(&mut self) {
        if let Some(rtp) = self.free.pop_front() {
            self.free.push_back(rtp);
        }
    }

    /// Gives a pair back, by its RTP port.
    pub fn release(&mut self, rtp: u16) -> Result<(), NotAllocated> {
        if !self.allocated.remove(&rtp) {
            return Err(NotAllocated(rtp));
        }
        self.free.push_back(rtp);
        Ok(())
    }

    /// True when the RTP port is currently handed out.
    pub fn is_allocated(&self, rtp: u16) -> bool {
        self.allocated.contains(&rtp)
    }

    /// Number of pairs in the pool.
    pub fn capacity(&self) -> usize {
        usize::from((self.last_rtp - self.first_rtp) / 2) + 1
    }

    /// Pairs currently free.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Pairs currently handed out.
    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    /// Asserts the pool's invariants (a bug if one fails).
    pub fn check_invariants(&self) {
        assert_eq!(
            self.free.len() + self.allocated.len(),
            self.capacity(),
            "every pair is free or allocated"
        );
        let free: BTreeSet<u16> = self.free.iter().copied().collect();
        assert_eq!(
            free.len(),
            self.free.len(),
            "a pair is on the free list twice"
        );
        assert!(
            free.is_disjoint(&self.allocated),
            "a pair is both free and allocated"
        );
        for port in free.iter().chain(self.allocated.iter()) {
            assert!(
                port % 2 == 0 && *port >= self.first_rtp && *port <= self.last_rtp,
                "port {port} is not an even port of the range"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// (first, last, expected (capacity, first port allocated) or None for an empty range)
    type RangeCase = (u16, u16, Option<(usize, u16)>);

    #[test]
    fn ranges() {
        let cases: &[RangeCase] = &[
            (10000, 10001, Some((1, 10000))),
            (10001, 10004, Some((1, 10002))),
            (10000, 10009, Some((5, 10000))),
            (10000, 10000, None),
            (10001, 10002, None),
            (9, 3, None),
            (65534, 65535, Some((1, 65534))),
            (65535, 65535, None),
        ];
        for (first, last, expected) in cases {
            let pool = PortPool::new(*first, *last);
            match (pool, expected) {
                (Ok(mut pool), Some((capacity, first_port))) => {
                    assert_eq!(pool.capacity(), *capacity, "{first}..={last}");
                    assert_eq!(pool.allocate().map(|p| p.rtp), Ok(*first_port));
                }
                (Err(_), None) => {}
                (pool, expected) => panic!("{first}..={last}: {pool:?} vs {expected:?}"),
            }
        }
    }

    #[test]
    fn exhaustion_is_a_refusal_and_release_reuses_last() {
        let mut pool = PortPool::new(20000, 20005).expect("three pairs");
        let a = pool.allocate().expect("first");
        let b = pool.allocate().expect("second");
        let c = pool.allocate().expect("third");
        assert_eq!((a.rtp, b.rtp, c.rtp), (20000, 20002, 20004));
        assert_eq!(c.rtcp, 20005);
        assert_eq!(pool.allocate(), Err(PoolExhausted { capacity: 3 }));
        assert_eq!(pool.release(20002), Ok(()));
        assert_eq!(pool.release(20002), Err(NotAllocated(20002)));
        assert_eq!(pool.release(20001), Err(NotAllocated(20001)));
        assert_eq!(pool.allocate().map(|p| p.rtp), Ok(20002));
        pool.check_invariants();
    }

    #[test]
    fn a_deferred_pair_is_handed_out_after_every_other_free_pair() {
        let mut pool = PortPool::new(20000, 20005).expect("three pairs");
        assert_eq!(
            pool.next_free().map(|p| (p.rtp, p.rtcp)),
            Some((20000, 20001))
        );
        pool.defer_next();
        let order: Vec<u16> = (0..3)
            .filter_map(|_| pool.allocate().ok())
            .map(|p| p.rtp)
            .collect();
        assert_eq!(order, [20002, 20004, 20000]);
        assert_eq!(pool.next_free(), None);
        pool.defer_next();
        pool.check_invariants();
    }

    proptest! {
        #[test]
        fn never_hands_out_a_pair_twice(operations in proptest::collection::vec((any::<bool>(), 0usize..16), 1..400)) {
            let mut pool = PortPool::new(30000, 30031).expect("16 pairs");
            let mut held: Vec<u16> = Vec::new();
            let mut model: HashSet<u16> = HashSet::new();
            for (allocate, index) in operations {
                if allocate {
                    match pool.allocate() {
                        Ok(pair) => {
                            prop_assert!(model.insert(pair.rtp), "port {} handed out twice", pair.rtp);
                            held.push(pair.rtp);
                        }
                        Err(_) => prop_assert_eq!(model.len(), 16),
                    }
                } else if !held.is_empty() {
                    let port = held.swap_remove(index % held.len());
                    prop_assert!(model.remove(&port));
                    prop_assert_eq!(pool.release(port), Ok(()));
                }
                pool.check_invariants();
                prop_assert_eq!(pool.allocated_count(), model.len());
            }
        }
    }
}
