//! The queue's exits and hours (Q5, Q9): who is told to leave and when.
//! Part of the queue machine.

use super::*;

impl QueueMachine {
    /// Q6: a waiting call asks its place and estimated wait, to announce
    /// them. O(position).
    pub(super) fn on_where(&mut self, entry: &str, out: &mut Vec<QueueOutput>) {
        let Some(info) = self.waiting.get(entry) else {
            return;
        };
        let position = self
            .waiting
            .in_service_order()
            .position(|e| e.entry == entry)
            .and_then(|p| u32::try_from(p + 1).ok());
        // Free agents matter up to the caller's position: counted that far.
        let estimated_wait_s = position.and_then(|p| {
            let free = self
                .index
                .available()
                .take(usize::try_from(p).unwrap_or(usize::MAX))
                .count();
            self.estimator
                .estimate_s(p, free, self.pool.serving(), self.now_ms)
        });
        out.push(QueueOutput::Send(Envelope {
            to: Address::Call {
                call: info.call_ref(),
            },
            message: Message::Call(CallMsg::Place {
                position,
                estimated_wait_s,
            }),
            hops: 0,
        }));
    }

    /// Tells a waiting call to leave (Q5); it is offered no more.
    pub(super) fn turn_away(
        &mut self,
        entry: &EntryInfo,
        reason: ExitReason,
        out: &mut Vec<QueueOutput>,
    ) {
        if self.turned_away.insert(entry.entry.clone()) {
            out.push(QueueOutput::Send(Envelope {
                to: Address::Call {
                    call: entry.call_ref(),
                },
                message: Message::Call(CallMsg::Exit {
                    queue: self.queue,
                    reason,
                }),
                hops: 0,
            }));
        }
    }

    /// Q9: once the opening state flips, callers waiting at closing time
    /// follow the queue's rule (`leave`: to the closed destination).
    pub(super) fn follow_hours(&mut self, now_ms: u64, out: &mut Vec<QueueOutput>) {
        let Some(spec) = self.spec.as_ref() else {
            return;
        };
        if self.hours_change_ms.is_none_or(|at| now_ms < at) {
            return;
        }
        let opening = hours::opening(spec, now_ms, &self.timezone);
        self.hours_change_ms = opening.next_change_ms;
        if opening.open || spec.at_closing != ClosingRule::Leave {
            return;
        }
        self.turn_away_all(ExitReason::Closed, out);
    }

    /// The leave policy (Q5): when the step left the queue without the
    /// agents it needs, every waiting call that no agent is ringing for is
    /// told to leave. O(waiting), once per time the queue empties.
    pub(super) fn turn_away_when_emptied(&mut self, out: &mut Vec<QueueOutput>) {
        let policy = self
            .spec
            .as_ref()
            .map_or(EmptyPolicy::Always, |s| s.leave_when_empty);
        let empty = self.pool.empty(policy);
        let emptied = empty && !self.was_empty;
        self.was_empty = empty;
        if !emptied {
            return;
        }
        self.turn_away_all(ExitReason::Emptied, out);
    }

    /// Tells every waiting call that no agent is ringing for to leave.
    /// O(waiting).
    pub(super) fn turn_away_all(&mut self, reason: ExitReason, out: &mut Vec<QueueOutput>) {
        let leaving: Vec<EntryInfo> = self
            .waiting
            .values()
            .filter(|e| !self.offers.has_entry(&e.entry) && !self.closing.contains(&e.entry))
            .cloned()
            .collect();
        for entry in leaving {
            self.turn_away(&entry, reason, out);
        }
    }
}
