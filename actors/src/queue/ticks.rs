//! The queue machine's wake-ups: relaxation steps, back-offs and the
//! opening hours' next change, and offers nobody ended (Q2, Q4, Q9).

use super::*;

impl QueueMachine {
    /// How long an offer may stay unanswered by its agent actor before the
    /// queue stops waiting for its `OfferEnded` (an agent actor that moved
    /// to another node with the offer in flight): the ring timeout and a
    /// margin for the ledger round trips.
    pub(super) fn offer_deadline_ms(&self) -> u64 {
        let ring_s = self
            .spec
            .as_ref()
            .map_or(60, |s| u64::from(s.ring_timeout_s));
        ring_s * 1000 + OFFER_GRACE_MS
    }

    pub(super) fn expire_offers(&mut self, now_ms: u64) {
        let deadline = self.offer_deadline_ms();
        let stale: Vec<UserId> = self
            .offers
            .iter()
            .filter(|(_, _, sent)| now_ms >= *sent + deadline)
            .map(|(_, u, _)| u)
            .collect();
        for agent in stale {
            tracing::warn!(
                queue = self.queue.0,
                agent = agent.0,
                "an offer was never ended by its agent; the caller is offered again"
            );
            self.drop_offers_of(agent);
            self.reindex(agent);
        }
    }

    /// Wakes the machine when a relaxation step or a back-off ends while
    /// calls wait (routing may then find an agent it could not before), and
    /// when an offer outlives its deadline.
    pub(super) fn arm_tick(&mut self, now_ms: u64, spec: &QueueSpec, out: &mut Vec<QueueOutput>) {
        if self.waiting.is_empty() {
            // Nothing to wake for; what this step changed is not looked at,
            // so the next arming looks at everything.
            self.tick_stale = true;
            return;
        }
        let mut next: Option<u64> = None;
        let mut consider = |at: u64| {
            if at > now_ms {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        // With a tick armed, every time it was armed from is still due no
        // earlier than it: only what this step changed (entries, agents'
        // reports, offers sent now) can need an earlier one. Without one
        // (at start, after it fired) everything counts.
        let full = self.next_tick_ms.is_none() || std::mem::take(&mut self.tick_stale);
        let touched_entries = self
            .touched_entries
            .iter()
            .filter_map(|id| self.waiting.get(id));
        let entries: Box<dyn Iterator<Item = &EntryInfo>> = if full {
            Box::new(self.waiting.values())
        } else {
            Box::new(touched_entries)
        };
        if !spec.relaxations.is_empty() {
            for e in entries {
                for step in &spec.relaxations {
                    consider(e.enqueued_at_ms + u64::from(step.after_s) * 1000);
                }
            }
        }
        if full {
            // The soonest back-off still running, in O(log n).
            if let Some((at, _)) = self.backoffs.range((now_ms + 1, UserId(0))..).next() {
                consider(*at);
            }
        } else {
            for r in self.touched.iter().filter_map(|u| self.reports.get(u)) {
                if r.member && r.available {
                    consider(r.not_before_ms);
                }
            }
        }
        // Callers still waiting (not all told to leave) follow the closing.
        if spec.at_closing == ClosingRule::Leave && self.waiting.len() > self.turned_away.len() {
            if let Some(at) = self.hours_change_ms {
                consider(at);
            }
        }
        let deadline = self.offer_deadline_ms();
        if full {
            for (_, _, sent) in self.offers.iter() {
                consider(sent + deadline);
            }
        } else if !self.touched_entries.is_empty() && self.offers.entry_count() > 0 {
            consider(now_ms + deadline);
        }
        if let Some(at) = next {
            if self.next_tick_ms.is_none_or(|t| at < t) {
                self.next_tick_ms = Some(at);
                out.push(QueueOutput::Tick {
                    after_ms: at - now_ms,
                });
            }
        }
    }
}
