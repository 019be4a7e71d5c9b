//! The keepalive client: OPTIONS towards each registered contact when the
//! registrar says one is due; an answer (any response) keeps the binding
//! reachable, a timeout or transport failure makes it unreachable (D7).

use rand::Rng;

use super::{Accounts, Edge};
use crate::b2bua::TxRefEvent;
use crate::message::Message;
use crate::registrar::{DeviceKey, Flow};
use crate::transaction::layer::{Event, Input, TxOwner};

impl<A: Accounts> Edge<A> {
    pub(super) fn send_keepalive(
        &mut self,
        now_ms: u64,
        key: DeviceKey,
        contact: String,
        flow: Flow,
        events: &mut Vec<Event>,
    ) {
        let branch = format!("z9hG4bK{:016x}", self.rng.gen::<u64>());
        let tag = self.tag();
        let call_id = format!("{:016x}@carillon", self.rng.gen::<u64>());
        let host = &self.config.advertised_host;
        let port = match (flow.transport, self.config.advertised_tls_port) {
            (crate::registrar::FlowTransport::Tls, Some(tls)) => tls,
            _ => self.config.advertised_port,
        };
        let text = format!(
            "OPTIONS {contact} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:keepalive@{host}>;tag={tag}\r\nTo: <{contact}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            flow.transport.via_token()
        );
        let Ok(request) = Message::parse(text.as_bytes()).map(Message::into_owned) else {
            // A contact we accepted but cannot address (it parsed as a URI
            // in the REGISTER, so this is not expected): count it failed.
            self.keepalives_failed += 1;
            self.registrar.keepalive_result(key, &contact, false);
            return;
        };
        self.keepalives_sent += 1;
        self.next_keepalive += 1;
        let owner = TxOwner(self.next_keepalive);
        self.keepalives.insert(owner, (key, contact));
        self.layer.handle(
            now_ms,
            Input::Send {
                request: Box::new(request),
                flow,
                owner,
            },
            events,
        );
    }

    pub(super) fn keepalive_answered(&mut self, owner: TxOwner, response: &Message<'_>) {
        let _ = response;
        if let Some((key, contact)) = self.keepalives.get(&owner) {
            self.registrar.keepalive_result(*key, contact, true);
        }
    }

    pub(super) fn keepalive_ended(&mut self, event: TxRefEvent, owner: TxOwner) {
        match event {
            TxRefEvent::Terminated(_) => {
                self.keepalives.remove(&owner);
            }
            TxRefEvent::TimedOut(_) | TxRefEvent::TransportFailed(_) => {
                if let Some((key, contact)) = self.keepalives.get(&owner) {
                    self.keepalives_failed += 1;
                    self.registrar.keepalive_result(*key, contact, false);
                }
            }
        }
    }
}
