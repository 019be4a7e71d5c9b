//! What an agent machine reads of the ledger ([`AgentSnapshot`]), as a pure
//! function of the ledger.

use std::collections::BTreeSet;

use super::machine::AgentSnapshot;
use crate::ledger::Ledger;
use crate::messages::EntryInfo;
use crate::model::user::{RingPlan, Role};
use crate::model::{DeviceId, TenantId, UserId};

/// The snapshot of `user`, or `None` when it is not an agent of `tenant`.
pub fn agent_snapshot(ledger: &Ledger, tenant: TenantId, user: UserId) -> Option<AgentSnapshot> {
    let t = ledger.tenant(tenant)?;
    let u = t.find_user(user)?;
    if !u.spec.roles.contains(&Role::Agent) {
        return None;
    }
    let session = t.session(user);
    let static_queues: BTreeSet<_> = t
        .queues()
        .filter(|q| q.spec.static_members.contains(&user))
        .map(|q| q.id)
        .collect();
    let mut queues: BTreeSet<_> = session.map(|s| s.checked_in.clone()).unwrap_or_default();
    queues.extend(static_queues.iter().copied());
    let bound: Vec<DeviceId> = t
        .devices_bound_to(user)
        .filter(|d| d.spec.kind.registers())
        .map(|d| d.id)
        .collect();
    let owned: Vec<DeviceId> = t
        .devices_owned_by(user)
        .filter(|d| d.spec.kind.registers())
        .map(|d| d.id)
        .collect();
    let ring_plan = if !bound.is_empty() {
        // D4: a bound line is the agent's phone.
        vec![(0, bound)]
    } else {
        match &u.spec.ring_plan {
            RingPlan::Staged { steps } if !steps.is_empty() => steps
                .iter()
                .map(|s| {
                    (
                        s.delay_s,
                        s.devices
                            .iter()
                            .copied()
                            .filter(|d| owned.contains(d))
                            .collect(),
                    )
                })
                .collect(),
            _ => vec![(0, owned)],
        }
    };
    let voice = t.agent_voice(user);
    let placement = ledger.placement();
    let entry = voice.voice.entry().and_then(|e| t.entry(e)).and_then(|e| {
        let call = e.call.as_deref()?.clone();
        Some(EntryInfo {
            tenant,
            queue: e.queue,
            entry: e.entry.clone(),
            priority: e.priority,
            sequence: e.sequence,
            enqueued_at_ms: e.enqueued_at_ms,
            call,
        })
    });
    let call_lost = entry.as_ref().is_some_and(|e| {
        !placement.members.is_empty() && !placement.members.contains(&e.call.node)
    });
    Some(AgentSnapshot {
        logged_in: session.is_some_and(|s| !s.terminals.is_empty()),
        paused: session.is_some_and(|s| s.pause.is_some()),
        ring_timeout_s: queues
            .iter()
            .filter_map(|q| t.queues().find(|x| x.id == *q))
            .map(|q| (q.id, q.spec.ring_timeout_s))
            .collect(),
        queue_names: queues
            .iter()
            .filter_map(|q| t.queues().find(|x| x.id == *q))
            .map(|q| (q.id, q.spec.name.clone()))
            .collect(),
        queues,
        static_queues,
        voice,
        skills: u.spec.skills.iter().map(|s| (s.skill, s.level)).collect(),
        ring_plan,
        entry,
        epoch: placement.epoch,
        call_lost,
        terminals: session
            .map(|s| s.terminals.iter().cloned().collect())
            .unwrap_or_default(),
        last_change: t.last_change(user).cloned(),
        recorded_unreachable: session.is_some_and(|s| s.unreachable_since_ms.is_some()),
    })
}
