//! The idempotence window: the answers of the most recently applied command
//! ids, so that a retried command gets its first answer and no second effect.

use crate::state::CommandId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// How many command ids are remembered. A client retries within seconds; at
/// tens of thousands of commands per second this still covers several seconds
/// of full load, and much longer at realistic rates. A retry older than the
/// window would be applied again, so clients must not retry for longer than
/// they wait (the service's forwarding client retries for at most its
/// deadline).
pub const DEDUP_WINDOW: usize = 200_000;

/// Remembered answers, oldest first. Invariant: `answers` and `order` hold
/// the same ids and at most `DEDUP_WINDOW` of them.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    answers: HashMap<CommandId, Vec<u8>>,
    order: VecDeque<CommandId>,
}

impl Dedup {
    /// The first answer given to `id`, if it is still remembered.
    pub fn answer(&self, id: &CommandId) -> Option<&[u8]> {
        self.answers.get(id).map(Vec::as_slice)
    }

    /// Remembers the answer to a newly applied command.
    pub fn remember(&mut self, id: CommandId, answer: Vec<u8>) {
        assert!(
            !self.answers.contains_key(&id),
            "a command id is applied at most once, so it is remembered at most once"
        );
        if self.order.len() == DEDUP_WINDOW {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
        self.answers.insert(id.clone(), answer);
        self.order.push_back(id);
        debug_assert_eq!(self.answers.len(), self.order.len());
    }

    /// Number of remembered ids.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_answer_is_returned_and_the_oldest_is_forgotten_past_the_window() {
        let mut dedup = Dedup::default();
        for i in 0..(DEDUP_WINDOW + 1) {
            dedup.remember(CommandId(i.to_string()), vec![i as u8]);
        }
        assert_eq!(dedup.len(), DEDUP_WINDOW);
        assert!(dedup.answer(&CommandId("0".into())).is_none());
        assert_eq!(dedup.answer(&CommandId("1".into())), Some(&[1u8][..]));
    }
}
