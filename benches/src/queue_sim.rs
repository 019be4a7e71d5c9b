//! What the queue benchmarks (`routing_scale`, `estimate_error`) feed the
//! real queue machines: waiting calls, and reading their offers.

use carillon_actors::ledger::CallCheckpoint;
use carillon_actors::messages::{Address, AgentMsg, EntryInfo, Message};
use carillon_actors::model::{QueueId, TenantId};
use carillon_actors::placement::ActorKey;
use carillon_actors::queue::QueueOutput;

/// Caller number `n` (its entry `call-n`, arrival order `sequence`) waiting
/// in `queue` since `now_ms`, its call on node 1.
pub fn waiting_call(
    tenant: TenantId,
    queue: QueueId,
    n: u64,
    sequence: u64,
    now_ms: u64,
) -> EntryInfo {
    let id = format!("call-{n}");
    EntryInfo {
        tenant,
        queue,
        entry: id.clone(),
        priority: 0,
        sequence,
        enqueued_at_ms: now_ms,
        call: CallCheckpoint {
            node: 1,
            leg: n,
            sip_call_id: id.clone(),
            caller: "+420777000001".into(),
            called: "+420225000100".into(),
            media_session: id,
            relay: "local".into(),
            agent_offer_sdp: "v=0".into(),
            arrived_at_ms: now_ms,
        },
    }
}

/// The agent and entry of an offer among a machine's outputs.
pub fn offer_in(out: &[QueueOutput]) -> Option<(u64, String)> {
    out.iter().find_map(|o| match o {
        QueueOutput::Send(e) => match (&e.to, &e.message) {
            (
                Address::Actor {
                    key: ActorKey::Agent { user, .. },
                },
                Message::Agent(AgentMsg::Offer(entry)),
            ) => Some((user.0, entry.entry.clone())),
            _ => None,
        },
        _ => None,
    })
}
