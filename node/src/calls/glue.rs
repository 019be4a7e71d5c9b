//! The glue between the B2BUA and the call actors, in the edge task: what
//! the node does with each new INVITE (which number, which tenant, which
//! queue, or which refusal and why), where each leg's events go, and the
//! edge requests of actors (answer, refuse, hang up, dial a device's
//! bindings).
//!
//! New INVITEs, in order: a DID of a tenant whose target is a queue starts
//! a call actor (the call is the actor's from then on); a DID routed
//! elsewhere is refused with 480 naming what is not served yet; a short
//! number or feature code of the tenant of the Request-URI's domain is
//! authenticated first (407 with a challenge, D7) and then served or
//! refused; anything else is 404 naming the number. Every refusal names its
//! rule in the reason phrase.
//!
//! Invariant: a leg of this node is mapped to exactly one call actor while
//! it lives, and the map forgets it at its `Ended` event.

use std::collections::HashMap;
use std::sync::Arc;

use carillon_actors::call::CallSetup;
use carillon_actors::messages::{
    Address, AgentMsg, CallMsg, CallRef, EdgeRequest, Envelope, LegNotice, LegRef, LegRequest,
    Message, RingRequest,
};
use carillon_actors::model::directory::NumberTarget;
use carillon_actors::model::ids::{TenantId, UserId};
use carillon_actors::model::DeviceId;
use carillon_actors::shell::{HostHandle, HostInput};
use carillon_sip::b2bua::{sdp_of, DialRequest, EndReason, LegCommand, LegEvent, LegId};
use carillon_sip::edge::{request_user, Accounts, Edge, EdgeOutput};
use carillon_sip::keys::{AccountKey, TenantKey};
use carillon_sip::message::Message as SipMessage;
use carillon_sip::registrar::DeviceKey;
use tokio::sync::watch;

use crate::directory::DirectoryView;
use crate::sip_io::CallDriver;
use carillon_actors::feature::FeatureSetup;

/// Refuses an unanswered inbound leg with a status and a reason naming the
/// rule (and extra headers: a challenge).
fn reject<A: Accounts>(
    now_ms: u64,
    edge: &mut Edge<A>,
    leg: LegId,
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    out: &mut Vec<EdgeOutput>,
) {
    edge.leg_command(
        now_ms,
        LegCommand::Reject {
            leg,
            status,
            reason,
            headers,
        },
        out,
    );
}

/// Who a leg of this node belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// A caller's leg: its call actor is on this node.
    Inbound { call: CallRef },
    /// A fork to an agent's device; its call actor may be anywhere.
    Fork {
        call: CallRef,
        agent: UserId,
        device: DeviceId,
        tenant: TenantId,
    },
}

/// Where the glue sends what it does not do itself.
pub trait Outlet: Send + Sync + 'static {
    /// Deliver to an actor (on this node or another).
    fn send(&self, envelope: Envelope);
    /// Wall-clock time, ms since the epoch.
    fn now_ms(&self) -> u64;
    /// An INVITE to an agent's device for the queue entry `entry` was
    /// handed to the transport (metrics).
    fn agent_dialled(&self, _entry: &str) {}
}

/// The call glue: the node's [`CallDriver`].
pub struct CallGlue<O: Outlet> {
    node: u64,
    view: watch::Receiver<Arc<DirectoryView>>,
    host: HostHandle,
    outlet: Arc<O>,
    /// The relay new calls use, or why there is none.
    relay: Result<String, String>,
    legs: HashMap<LegId, Owner>,
    next_call: u64,
    boot: u64,
}

impl<O: Outlet> std::fmt::Debug for CallGlue<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallGlue")
            .field("node", &self.node)
            .field("legs", &self.legs.len())
            .finish_non_exhaustive()
    }
}

/// The forms under which a dialled number may be a DID: as dialled, with
/// `+`, and with `00` as `+`.
fn did_forms(user: &str) -> Vec<String> {
    let digits: String = user.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut forms = vec![user.to_string()];
    if !user.starts_with('+') && digits.len() == user.len() {
        forms.push(format!("+{digits}"));
        if let Some(rest) = digits.strip_prefix("00") {
            forms.push(format!("+{rest}"));
        }
    }
    forms
}

fn notice(event: &LegEvent) -> Option<LegNotice> {
    Some(match event {
        LegEvent::Incoming { .. } => return None,
        LegEvent::Progress { status, .. } => LegNotice::Progress { status: *status },
        LegEvent::Answered { sdp, .. } => LegNotice::Answered { sdp: sdp.clone() },
        LegEvent::Confirmed { .. } => LegNotice::Confirmed,
        LegEvent::Reoffered { .. } => return None,
        LegEvent::Info {
            content_type, body, ..
        } => LegNotice::Info {
            content_type: content_type.clone(),
            body: body.clone(),
        },
        LegEvent::Ended { reason, .. } => {
            let (reason, status) = match reason {
                EndReason::RemoteHangup => ("remote_hangup", None),
                EndReason::LocalHangup => ("local_hangup", None),
                EndReason::Rejected { status, .. } => ("rejected", Some(*status)),
                EndReason::NoAck => ("no_ack", None),
                EndReason::TransportFailed => ("transport_failed", None),
            };
            LegNotice::Ended {
                reason: reason.into(),
                status,
            }
        }
    })
}

impl<O: Outlet> CallGlue<O> {
    /// The glue of node `node`; `relay` names the media relay new calls use
    /// (`Err` with the reason when the node has none).
    pub fn new(
        node: u64,
        view: watch::Receiver<Arc<DirectoryView>>,
        host: HostHandle,
        outlet: Arc<O>,
        relay: Result<String, String>,
        boot: u64,
    ) -> Self {
        CallGlue {
            node,
            view,
            host,
            outlet,
            relay,
            legs: HashMap::new(),
            next_call: 0,
            boot,
        }
    }

    fn incoming<A: Accounts>(
        &mut self,
        now_ms: u64,
        leg: LegId,
        invite: &SipMessage<'static>,
        flow: &carillon_sip::registrar::Flow,
        edge: &mut Edge<A>,
        out: &mut Vec<EdgeOutput>,
    ) {
        let user = request_user(invite).unwrap_or_default();
        let view = self.view.borrow().clone();
        let did = did_forms(&user).into_iter().find_map(|form| {
            view.number(&form)
                .map(|(t, target)| (form, t, target.clone()))
        });
        if let Some((e164, tenant, target)) = did {
            match target {
                NumberTarget::Queue { queue } => {
                    let Some(spec) = view.tenant(tenant).and_then(|d| d.queues.get(&queue).cloned()) else {
                        return reject(now_ms, edge, leg, 404, format!("Not Found - {e164} leads to a queue that no longer exists"), Vec::new(), out);
                    };
                    let relay = match &self.relay {
                        Ok(r) => r.clone(),
                        Err(why) => {
                            let reason = format!("Service Unavailable - no media relay on this node: {why}");
                            return reject(now_ms, edge, leg, 503, reason, Vec::new(), out);
                        }
                    };
                    self.next_call += 1;
                    let call = format!("c{}-{:x}-{}", self.node, self.boot, self.next_call);
                    let caller = invite
                        .headers
                        .from
                        .uri
                        .as_sip()
                        .and_then(|u| u.user.as_deref().map(carillon_sip::message::percent_decode))
                        .unwrap_or_else(|| "anonymous".into());
                    let setup = CallSetup {
                        tenant,
                        call: call.clone(),
                        node: self.node,
                        leg: leg.0,
                        sip_call_id: invite.headers.call_id.to_string(),
                        caller,
                        called: e164,
                        offer_sdp: sdp_of(invite).unwrap_or_default(),
                        queue,
                        spec: (*spec).clone(),
                        arrived_at_ms: self.outlet.now_ms(),
                        relay,
                    };
                    self.legs.insert(
                        leg,
                        Owner::Inbound {
                            call: CallRef {
                                node: self.node,
                                call,
                            },
                        },
                    );
                    self.host.send(HostInput::StartCall(Box::new(setup)));
                }
                NumberTarget::User { .. } => reject(
                    now_ms,
                    edge,
                    leg,
                    480,
                    format!("Temporarily Unavailable - D3: {e164} leads to a user; direct calls are not routed by this node yet"),
                    Vec::new(),
                    out,
                ),
                NumberTarget::Ivr { name } => reject(
                    now_ms,
                    edge,
                    leg,
                    480,
                    format!("Temporarily Unavailable - C2: {e164} leads to IVR {name:?}, which this node does not serve"),
                    Vec::new(),
                    out,
                ),
            }
            return;
        }
        // Not a DID: an internal number of the tenant of the domain.
        let domain = invite
            .request_uri()
            .and_then(|u| u.as_sip())
            .map(|u| u.host.to_string())
            .unwrap_or_default();
        let tenant = view.tenant_for_domain(&domain).or_else(|| {
            // A phone that dials `sip:#300#@<node address>`: the tenant of
            // its From domain.
            invite
                .headers
                .from
                .uri
                .as_sip()
                .and_then(|u| view.tenant_for_domain(&u.host.to_string()))
        });
        let Some(tenant) = tenant else {
            let reason = format!("Not Found - {user} is not a number served here");
            return reject(now_ms, edge, leg, 404, reason, Vec::new(), out);
        };
        let realm = view
            .tenant(tenant)
            .map(|d| d.domain.clone())
            .unwrap_or(domain);
        // The tenant's own codes (A3), from the view the ledger pushes.
        let feature = view.tenant(tenant).and_then(|d| d.features.parse(&user));
        let is_internal = feature.is_some()
            || view
                .tenant(tenant)
                .is_some_and(|d| d.short_numbers.contains_key(&user));
        if !is_internal {
            let reason = format!(
                "Not Found - {user} is neither a DID nor an internal number of this tenant"
            );
            return reject(now_ms, edge, leg, 404, reason, Vec::new(), out);
        }
        let verdict =
            edge.verify_proxy_credentials(now_ms, TenantKey(tenant.0), &realm, invite, flow);
        match verdict {
            carillon_sip::edge::ProxyAuth::Challenge { reason, headers } => {
                reject(now_ms, edge, leg, 407, reason, headers, out)
            }
            carillon_sip::edge::ProxyAuth::Refuse { status, reason } => {
                reject(now_ms, edge, leg, status, reason, Vec::new(), out)
            }
            carillon_sip::edge::ProxyAuth::Verified(AccountKey(device)) => {
                if let Some(request) = feature {
                    let relay = match &self.relay {
                        Ok(r) => r.clone(),
                        Err(why) => {
                            let reason =
                                format!("Service Unavailable - no media relay on this node: {why}");
                            return reject(now_ms, edge, leg, 503, reason, Vec::new(), out);
                        }
                    };
                    self.next_call += 1;
                    let call = format!("f{}-{:x}-{}", self.node, self.boot, self.next_call);
                    self.legs.insert(
                        leg,
                        Owner::Inbound {
                            call: CallRef {
                                node: self.node,
                                call: call.clone(),
                            },
                        },
                    );
                    self.host
                        .send(HostInput::StartFeature(Box::new(FeatureSetup {
                            tenant,
                            call,
                            node: self.node,
                            leg: leg.0,
                            device: DeviceId(device),
                            dialled: user,
                            request,
                            offer_sdp: sdp_of(invite).unwrap_or_default(),
                            relay,
                            arrived_at_ms: self.outlet.now_ms(),
                        })));
                } else {
                    let reason = format!("Temporarily Unavailable - D2: internal calls to {user} are not routed by this node yet");
                    reject(now_ms, edge, leg, 480, reason, Vec::new(), out)
                }
            }
        }
    }

    fn dial<A: Accounts>(
        &mut self,
        now_ms: u64,
        request: RingRequest,
        edge: &mut Edge<A>,
        out: &mut Vec<EdgeOutput>,
    ) {
        let view = self.view.borrow().clone();
        let tenant = self.tenant_of_call(&request);
        let directory = tenant.and_then(|t| view.tenant(t).cloned().map(|d| (t, d)));
        let mut placed = false;
        if let Some((tenant, directory)) = directory {
            let key = DeviceKey {
                tenant: TenantKey(tenant.0),
                device: AccountKey(request.device.0),
            };
            let username = directory
                .devices
                .get(&request.device)
                .and_then(|d| d.sip_username.clone())
                .unwrap_or_default();
            let bindings = edge
                .registration(now_ms, key)
                .map(|r| r.bindings)
                .unwrap_or_default();
            for binding in bindings.into_iter().filter(|b| b.reachable) {
                let dial = DialRequest {
                    target: binding.contact.clone(),
                    flow: binding.flow,
                    to: format!("sip:{username}@{}", directory.domain),
                    from_user: request.caller.clone(),
                    from_display: Some(request.display.clone()),
                    from_host: directory.domain.clone(),
                    sdp: request.sdp.clone(),
                    headers: vec![("X-Carillon-Call".into(), request.call.call.clone())],
                };
                if let Some(leg) = edge.dial(now_ms, dial, out) {
                    if !placed {
                        // The INVITE is in `out`, which the edge task
                        // transmits when this command is settled.
                        self.outlet.agent_dialled(&request.call.call);
                    }
                    placed = true;
                    self.legs.insert(
                        leg,
                        Owner::Fork {
                            call: request.call.clone(),
                            agent: request.agent,
                            device: request.device,
                            tenant,
                        },
                    );
                    self.outlet.send(Envelope {
                        to: Address::Call {
                            call: request.call.clone(),
                        },
                        message: Message::Call(CallMsg::Forked {
                            leg: LegRef {
                                node: self.node,
                                leg: leg.0,
                            },
                            agent: request.agent,
                            device: request.device,
                        }),
                        hops: 0,
                    });
                }
            }
            if !placed {
                self.outlet.send(Envelope {
                    to: Address::agent(tenant, request.agent),
                    message: Message::Agent(AgentMsg::DeviceRinging {
                        device: request.device,
                        entry: request.call.call.clone(),
                        placed: false,
                    }),
                    hops: 0,
                });
            }
        }
    }

    /// The tenant of a ring request: the agent's (every id names one object
    /// across tenants, so the directory finds the device's tenant).
    fn tenant_of_call(&self, request: &RingRequest) -> Option<TenantId> {
        let view = self.view.borrow();
        view.tenant_of_device(request.device)
    }
}

impl<A: Accounts, O: Outlet> CallDriver<A> for CallGlue<O> {
    type Command = EdgeRequest;

    fn on_leg_event(
        &mut self,
        now_ms: u64,
        event: LegEvent,
        edge: &mut Edge<A>,
        out: &mut Vec<EdgeOutput>,
    ) {
        if let LegEvent::Incoming { leg, invite, flow } = &event {
            self.incoming(now_ms, *leg, invite, flow, edge, out);
            return;
        }
        let leg = event.leg();
        let ended = matches!(event, LegEvent::Ended { .. });
        let owner = if ended {
            self.legs.remove(&leg)
        } else {
            self.legs.get(&leg).cloned()
        };
        let Some(owner) = owner else {
            return;
        };
        let call = match owner {
            Owner::Inbound { call } | Owner::Fork { call, .. } => call,
        };
        if let Some(notice) = notice(&event) {
            self.outlet.send(Envelope {
                to: Address::Call { call },
                message: Message::Call(CallMsg::Leg {
                    leg: LegRef {
                        node: self.node,
                        leg: leg.0,
                    },
                    event: notice,
                }),
                hops: 0,
            });
        }
    }

    fn on_command(
        &mut self,
        now_ms: u64,
        command: EdgeRequest,
        edge: &mut Edge<A>,
        out: &mut Vec<EdgeOutput>,
    ) {
        match command {
            EdgeRequest::Dial(request) => self.dial(now_ms, *request, edge, out),
            EdgeRequest::Hangup { leg } => {
                edge.leg_command(now_ms, LegCommand::Hangup { leg: LegId(leg) }, out)
            }
            EdgeRequest::Leg(request) => {
                let command = match *request {
                    LegRequest::Progress { leg, status, sdp } => LegCommand::Progress {
                        leg: LegId(leg),
                        status,
                        sdp,
                    },
                    LegRequest::Answer { leg, sdp } => LegCommand::Answer {
                        leg: LegId(leg),
                        sdp,
                    },
                    LegRequest::Reject {
                        leg,
                        status,
                        reason,
                    } => LegCommand::Reject {
                        leg: LegId(leg),
                        status,
                        reason,
                        headers: Vec::new(),
                    },
                };
                edge.leg_command(now_ms, command, out);
            }
        }
    }
}
