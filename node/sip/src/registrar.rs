//! The location service of the registrar (RFC 3261 section 10.3): bindings
//! of contacts to addresses of record, their expiry and refresh, and the
//! extension state (D7) derived from them and from OPTIONS keepalives.
//!
//! An address of record is a device ([`DeviceKey`]); authentication and the
//! choice of the device happen before this module (see [`super::edge`]).
//!
//! Invariants:
//! - an address of record holds at most `max_contacts` bindings, each with
//!   a distinct contact URI, none expired after [`Registrar::expire`];
//! - a registration is applied whole or not at all (a refused REGISTER
//!   changes nothing);
//! - `registered_devices[tenant]` equals the number of that tenant's
//!   counted devices (L1) that hold at least one binding, and a new device
//!   is refused when it would exceed the tenant's allowance.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use crate::keys::{AccountKey, TenantKey};
use serde::Serialize;

/// An address of record: one device of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DeviceKey {
    /// Tenant.
    pub tenant: TenantKey,
    /// Device.
    pub device: AccountKey,
}

/// The transport a message came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowTransport {
    /// UDP datagrams.
    Udp,
    /// A TCP connection.
    Tcp,
    /// A WebSocket connection (RFC 7118).
    Ws,
    /// A TLS connection (RFC 3261 section 26).
    Tls,
    /// A WebSocket over TLS (RFC 7118).
    Wss,
}

impl FlowTransport {
    /// Whether the transport is reliable (no retransmissions needed).
    pub fn is_reliable(self) -> bool {
        !matches!(self, FlowTransport::Udp)
    }

    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            FlowTransport::Udp => "UDP",
            FlowTransport::Tcp => "TCP",
            FlowTransport::Ws => "WS",
            FlowTransport::Tls => "TLS",
            FlowTransport::Wss => "WSS",
        }
    }
}

/// Where a message came from, and how to answer on the same path: a UDP
/// source address, or a connection (id assigned by the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Flow {
    /// Transport.
    pub transport: FlowTransport,
    /// Remote address.
    pub remote: SocketAddr,
    /// Connection id for stream transports.
    pub connection: Option<u64>,
}

/// Extension state (D7). `busy` comes with calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionState {
    /// At least one binding is current and answered its last keepalive.
    Online,
    /// No current binding, or none answers.
    Unavailable,
}

/// Limits and defaults of the registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (423 Interval Too Brief below it).
    pub min_expires_s: u32,
    /// Longest registration granted (longer requests are shortened).
    pub max_expires_s: u32,
    /// Granted when the request names no expiry.
    pub default_expires_s: u32,
    /// Most contacts per address of record.
    pub max_contacts: usize,
    /// Interval between OPTIONS keepalives to each contact.
    pub keepalive_interval_ms: u64,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires_s: 60,
            max_expires_s: 3_600,
            default_expires_s: 3_600,
            max_contacts: 10,
            keepalive_interval_ms: 30_000,
        }
    }
}

/// One contact of a REGISTER, as the edge read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    /// The contact URI, printed.
    pub uri: String,
    /// The contact's `expires` parameter.
    pub expires: Option<u32>,
    /// The `q` parameter in thousandths.
    pub q: Option<u16>,
}

/// The registration part of a REGISTER request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// Contacts; empty for a query.
    pub contacts: Vec<ContactRequest>,
    /// `Contact: *`.
    pub wildcard: bool,
    /// The Expires header.
    pub expires: Option<u32>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// Where the request came from.
    pub flow: Flow,
    /// User-Agent, for the views.
    pub user_agent: Option<String>,
}

/// What the device-package rule (L1) allows for a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAllowance {
    /// Whether this device counts against the tenant's packages.
    pub counted: bool,
    /// Devices the tenant's packages allow.
    pub allowed: u32,
}

/// Why a REGISTER was refused; each names its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterRefusal {
    /// 423: an expiry below the minimum.
    #[error("Interval Too Brief - registrations must last at least {min_expires_s} s")]
    IntervalTooBrief {
        /// The minimum.
        min_expires_s: u32,
    },
    /// 400: `*` with other contacts or a non-zero expiry (RFC 3261 10.3
    /// step 6).
    #[error("Bad Request - Contact '*' needs Expires: 0 and no other contact")]
    WildcardMisuse,
    /// 400: same Call-ID with a CSeq not above the binding's (step 7).
    #[error("Bad Request - CSeq {cseq} is not above the binding's {existing} for this Call-ID")]
    OutOfOrder {
        /// Request CSeq.
        cseq: u32,
        /// Binding CSeq.
        existing: u32,
    },
    /// 403: more contacts than allowed for one device.
    #[error("Forbidden - at most {max} contacts per device")]
    TooManyContacts {
        /// The limit.
        max: usize,
    },
    /// 403: L1, the tenant's device packages are all in use.
    #[error(
        "Forbidden - L1: device packages allow {allowed} registered devices and all are in use"
    )]
    DevicePackageLimit {
        /// Devices allowed.
        allowed: u32,
    },
}

impl RegisterRefusal {
    /// The SIP status code.
    pub fn status(&self) -> u16 {
        match self {
            RegisterRefusal::IntervalTooBrief { .. } => 423,
            RegisterRefusal::WildcardMisuse | RegisterRefusal::OutOfOrder { .. } => 400,
            RegisterRefusal::TooManyContacts { .. }
            | RegisterRefusal::DevicePackageLimit { .. } => 403,
        }
    }
}

/// A stored binding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    contact: String,
    call_id: String,
    cseq: u32,
    expires_at_ms: u64,
    q: Option<u16>,
    flow: Flow,
    user_agent: Option<String>,
    reachable: bool,
    next_keepalive_ms: u64,
    keepalive_pending: bool,
}

/// What the registrar shows of one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingView {
    /// Contact URI.
    pub contact: String,
    /// Seconds left.
    pub expires_s: u32,
    /// `q` in thousandths.
    pub q: Option<u16>,
    /// Transport and source.
    pub flow: Flow,
    /// User-Agent.
    pub user_agent: Option<String>,
    /// Whether it answered its last keepalive.
    pub reachable: bool,
}

/// The registration state of one device, for views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRegistration {
    /// Extension state (D7).
    pub state: ExtensionState,
    /// Current bindings.
    pub bindings: Vec<BindingView>,
}

/// A keepalive the edge must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepaliveDue {
    /// The device.
    pub key: DeviceKey,
    /// The contact URI to ping.
    pub contact: String,
    /// The flow to send it on.
    pub flow: Flow,
}

#[derive(Debug, Default)]
struct Aor {
    bindings: Vec<Binding>,
    counted: bool,
}

/// The location service.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: HashMap<DeviceKey, Aor>,
    registered_devices: HashMap<TenantKey, u32>,
    dirty: bool,
    /// Whether some binding may be unreachable (lets [`Registrar::flow_seen`]
    /// skip its scan on the hot path).
    any_unreachable: bool,
}

impl Registrar {
    /// An empty location service.
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            aors: HashMap::new(),
            registered_devices: HashMap::new(),
            dirty: false,
            any_unreachable: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    fn views(&self, now_ms: u64, aor: &Aor) -> Vec<BindingView> {
        aor.bindings
            .iter()
            .map(|b| BindingView {
                contact: b.contact.clone(),
                expires_s: u32::try_from(b.expires_at_ms.saturating_sub(now_ms).div_ceil(1_000))
                    .unwrap_or(u32::MAX),
                q: b.q,
                flow: b.flow,
                user_agent: b.user_agent.clone(),
                reachable: b.reachable,
            })
            .collect()
    }

    /// Applies a REGISTER for `key` (RFC 3261 10.3 steps 6-8) and returns
    /// the bindings now current, for the 200 response.
    pub fn register(
        &mut self,
        now_ms: u64,
        key: DeviceKey,
        request: &RegisterRequest,
        allowance: DeviceAllowance,
    ) -> Result<Vec<BindingView>, RegisterRefusal> {
        self.expire_one(now_ms, key);
        if request.wildcard {
            if request.expires != Some(0) || !request.contacts.is_empty() {
                return Err(RegisterRefusal::WildcardMisuse);
            }
            let Some(aor) = self.aors.get(&key) else {
                return Ok(Vec::new());
            };
            for b in &aor.bindings {
                if b.call_id == request.call_id && request.cseq <= b.cseq {
                    return Err(RegisterRefusal::OutOfOrder {
                        cseq: request.cseq,
                        existing: b.cseq,
                    });
                }
            }
            self.remove_aor(key);
            return Ok(Vec::new());
        }
        // Work on a copy; commit only when every contact passed.
        let mut bindings = self
            .aors
            .get(&key)
            .map(|a| a.bindings.clone())
            .unwrap_or_default();
        for c in &request.contacts {
            let asked = c
                .expires
                .or(request.expires)
                .unwrap_or(self.config.default_expires_s);
            if asked != 0 && asked < self.config.min_expires_s {
                return Err(RegisterRefusal::IntervalTooBrief {
                    min_expires_s: self.config.min_expires_s,
                });
            }
            let granted = asked.min(self.config.max_expires_s);
            let existing = bindings.iter().position(|b| b.contact == c.uri);
            if let Some(i) = existing {
                let b = &bindings[i];
                if b.call_id == request.call_id && request.cseq <= b.cseq {
                    return Err(RegisterRefusal::OutOfOrder {
                        cseq: request.cseq,
                        existing: b.cseq,
                    });
                }
            }
            match (existing, granted) {
                (Some(i), 0) => {
                    bindings.remove(i);
                }
                (None, 0) => {}
                (existing, granted) => {
                    let binding = Binding {
                        contact: c.uri.clone(),
                        call_id: request.call_id.clone(),
                        cseq: request.cseq,
                        expires_at_ms: now_ms.saturating_add(u64::from(granted) * 1_000),
                        q: c.q,
                        flow: request.flow,
                        user_agent: request.user_agent.clone(),
                        reachable: true,
                        next_keepalive_ms: now_ms.saturating_add(self.config.keepalive_interval_ms),
                        keepalive_pending: false,
                    };
                    match existing {
                        Some(i) => bindings[i] = binding,
                        None => bindings.push(binding),
                    }
                }
            }
        }
        if bindings.len() > self.config.max_contacts {
            return Err(RegisterRefusal::TooManyContacts {
                max: self.config.max_contacts,
            });
        }
        let was_registered = self.aors.get(&key).is_some_and(|a| !a.bindings.is_empty());
        if !was_registered && !bindings.is_empty() && allowance.counted {
            let in_use = self.registered_devices(key.tenant);
            if in_use >= allowance.allowed {
                return Err(RegisterRefusal::DevicePackageLimit {
                    allowed: allowance.allowed,
                });
            }
        }
        // Commit.
        if bindings.is_empty() {
            self.remove_aor(key);
            return Ok(Vec::new());
        }
        let newly = !was_registered;
        let aor = self.aors.entry(key).or_default();
        aor.bindings = bindings;
        if newly && allowance.counted {
            aor.counted = true;
            *self.registered_devices.entry(key.tenant).or_default() += 1;
        }
        self.dirty = true;
        let aor = &self.aors[&key];
        Ok(self.views(now_ms, aor))
    }

    /// The current bindings of `key` (a REGISTER without contacts).
    pub fn bindings(&self, now_ms: u64, key: DeviceKey) -> Vec<BindingView> {
        self.aors
            .get(&key)
            .map(|a| {
                let mut v = self.views(now_ms, a);
                v.retain(|b| b.expires_s > 0);
                v
            })
            .unwrap_or_default()
    }

    fn remove_aor(&mut self, key: DeviceKey) {
        if let Some(aor) = self.aors.remove(&key) {
            if aor.counted {
                if let Some(n) = self.registered_devices.get_mut(&key.tenant) {
                    *n = n.saturating_sub(1);
                }
            }
            self.dirty = true;
        }
    }

    fn expire_one(&mut self, now_ms: u64, key: DeviceKey) {
        let Some(aor) = self.aors.get_mut(&key) else {
            return;
        };
        let before = aor.bindings.len();
        aor.bindings.retain(|b| b.expires_at_ms > now_ms);
        if aor.bindings.len() != before {
            self.dirty = true;
        }
        if aor.bindings.is_empty() {
            self.remove_aor(key);
        }
    }

    /// Removes expired bindings everywhere.
    pub fn expire(&mut self, now_ms: u64) {
        let keys: Vec<DeviceKey> = self
            .aors
            .iter()
            .filter(|(_, a)| a.bindings.iter().any(|b| b.expires_at_ms <= now_ms))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.expire_one(now_ms, key);
        }
    }

    /// Counted devices of `tenant` holding a binding.
    pub fn registered_devices(&self, tenant: TenantKey) -> u32 {
        self.registered_devices.get(&tenant).copied().unwrap_or(0)
    }

    /// Extension state of a device.
    pub fn state(&self, now_ms: u64, key: DeviceKey) -> ExtensionState {
        let online = self.aors.get(&key).is_some_and(|a| {
            a.bindings
                .iter()
                .any(|b| b.reachable && b.expires_at_ms > now_ms)
        });
        if online {
            ExtensionState::Online
        } else {
            ExtensionState::Unavailable
        }
    }

    /// Keepalives due at `now_ms`; each is marked pending until
    /// [`Registrar::keepalive_result`] reports on it.
    pub fn keepalives_due(&mut self, now_ms: u64) -> Vec<KeepaliveDue> {
        let interval = self.config.keepalive_interval_ms;
        let mut due = Vec::new();
        for (key, aor) in &mut self.aors {
            for b in &mut aor.bindings {
                if !b.keepalive_pending && b.next_keepalive_ms <= now_ms {
                    b.keepalive_pending = true;
                    b.next_keepalive_ms = now_ms.saturating_add(interval);
                    due.push(KeepaliveDue {
                        key: *key,
                        contact: b.contact.clone(),
                        flow: b.flow,
                    });
                }
            }
        }
        due
    }

    /// The outcome of a keepalive: any response means reachable; a timeout
    /// or transport failure means not.
    pub fn keepalive_result(&mut self, key: DeviceKey, contact: &str, answered: bool) {
        if let Some(b) = self
            .aors
            .get_mut(&key)
            .and_then(|a| a.bindings.iter_mut().find(|b| b.contact == contact))
        {
            b.keepalive_pending = false;
            if b.reachable != answered {
                b.reachable = answered;
                self.dirty = true;
            }
            if !answered {
                self.any_unreachable = true;
            }
        }
    }

    /// A request arrived over `flow` (the device's own keepalive, or any
    /// other traffic): bindings on that flow are reachable.
    pub fn flow_seen(&mut self, flow: &Flow) {
        if !self.any_unreachable {
            return;
        }
        let mut still = false;
        for aor in self.aors.values_mut() {
            for b in &mut aor.bindings {
                if &b.flow == flow && !b.reachable {
                    b.reachable = true;
                    self.dirty = true;
                }
                still |= !b.reachable;
            }
        }
        self.any_unreachable = still;
    }

    /// A stream connection closed: its bindings cannot be reached.
    pub fn connection_closed(&mut self, connection: u64) {
        for aor in self.aors.values_mut() {
            for b in &mut aor.bindings {
                if b.flow.connection == Some(connection) && b.reachable {
                    b.reachable = false;
                    self.dirty = true;
                    self.any_unreachable = true;
                }
            }
        }
    }

    /// Whether anything visible changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Every registered device and its state, for views.
    pub fn snapshot(&self, now_ms: u64) -> BTreeMap<DeviceKey, DeviceRegistration> {
        self.aors
            .iter()
            .map(|(key, aor)| {
                (
                    *key,
                    DeviceRegistration {
                        state: self.state(now_ms, *key),
                        bindings: self.views(now_ms, aor),
                    },
                )
            })
            .collect()
    }

    /// One device's registration now, if it has bindings.
    pub fn registration(&self, now_ms: u64, key: DeviceKey) -> Option<DeviceRegistration> {
        let aor = self.aors.get(&key)?;
        Some(DeviceRegistration {
            state: self.state(now_ms, key),
            bindings: self.views(now_ms, aor),
        })
    }

    /// Bindings held in all.
    pub fn binding_count(&self) -> usize {
        self.aors.values().map(|a| a.bindings.len()).sum()
    }

    /// Asserts the module's invariants (tests).
    pub fn check_invariants(&self) {
        let mut counted: HashMap<TenantKey, u32> = HashMap::new();
        for (key, aor) in &self.aors {
            assert!(
                !aor.bindings.is_empty(),
                "an AOR without bindings is removed"
            );
            assert!(aor.bindings.len() <= self.config.max_contacts);
            for (i, b) in aor.bindings.iter().enumerate() {
                assert!(
                    aor.bindings[i + 1..].iter().all(|o| o.contact != b.contact),
                    "contacts are distinct"
                );
            }
            if aor.counted {
                *counted.entry(key.tenant).or_default() += 1;
            }
        }
        for (tenant, n) in &self.registered_devices {
            assert_eq!(counted.get(tenant).copied().unwrap_or(0), *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(device: u64) -> DeviceKey {
        DeviceKey {
            tenant: TenantKey(1),
            device: AccountKey(device),
        }
    }

    fn flow() -> Flow {
        Flow {
            transport: FlowTransport::Udp,
            remote: "127.0.0.1:5070".parse().expect("addr"),
            connection: None,
        }
    }

    fn req(contacts: &[(&str, Option<u32>)], expires: Option<u32>, cseq: u32) -> RegisterRequest {
        RegisterRequest {
            contacts: contacts
                .iter()
                .map(|(uri, e)| ContactRequest {
                    uri: (*uri).into(),
                    expires: *e,
                    q: None,
                })
                .collect(),
            wildcard: false,
            expires,
            call_id: "call-1".into(),
            cseq,
            flow: flow(),
            user_agent: None,
        }
    }

    const ANY: DeviceAllowance = DeviceAllowance {
        counted: true,
        allowed: 10,
    };

    #[test]
    fn register_refresh_and_expire() {
        let mut r = Registrar::new(RegistrarConfig::default());
        let v = r
            .register(0, key(1), &req(&[("sip:a@h", None)], Some(120), 1), ANY)
            .expect("registers");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].expires_s, 120);
        assert_eq!(r.state(0, key(1)), ExtensionState::Online);
        let v = r
            .register(
                1_000,
                key(1),
                &req(&[("sip:b@h", Some(600))], Some(120), 2),
                ANY,
            )
            .expect("second contact");
        assert_eq!(v.len(), 2);
        assert_eq!(r.registered_devices(TenantKey(1)), 1);
        r.expire(121_000);
        assert_eq!(
            r.bindings(121_000, key(1)).len(),
            1,
            "first contact expired"
        );
        r.expire(601_000);
        assert_eq!(r.state(601_000, key(1)), ExtensionState::Unavailable);
        assert_eq!(r.registered_devices(TenantKey(1)), 0);
        r.check_invariants();
    }

    #[test]
    fn refusals_change_nothing() {
        let mut r = Registrar::new(RegistrarConfig {
            max_contacts: 2,
            ..RegistrarConfig::default()
        });
        r.register(0, key(1), &req(&[("sip:a@h", None)], None, 5), ANY)
            .expect("registers");
        assert_eq!(
            r.register(0, key(1), &req(&[("sip:b@h", Some(10))], None, 6), ANY),
            Err(RegisterRefusal::IntervalTooBrief { min_expires_s: 60 })
        );
        assert_eq!(
            r.register(0, key(1), &req(&[("sip:a@h", None)], None, 5), ANY),
            Err(RegisterRefusal::OutOfOrder {
                cseq: 5,
                existing: 5
            })
        );
        assert_eq!(
            r.register(
                0,
                key(1),
                &req(&[("sip:b@h", None), ("sip:c@h", None)], None, 7),
                ANY
            ),
            Err(RegisterRefusal::TooManyContacts { max: 2 })
        );
        let mut star = req(&[], Some(3600), 8);
        star.wildcard = true;
        assert_eq!(
            r.register(0, key(1), &star, ANY),
            Err(RegisterRefusal::WildcardMisuse)
        );
        assert_eq!(r.bindings(0, key(1)).len(), 1, "nothing was applied");
        star.expires = Some(0);
        assert_eq!(r.register(0, key(1), &star, ANY), Ok(Vec::new()));
        assert_eq!(r.state(0, key(1)), ExtensionState::Unavailable);
        r.check_invariants();
    }

    #[test]
    fn device_package_limit_counts_registered_devices() {
        let mut r = Registrar::new(RegistrarConfig::default());
        let two = DeviceAllowance {
            counted: true,
            allowed: 2,
        };
        r.register(0, key(1), &req(&[("sip:a@h", None)], None, 1), two)
            .expect("first");
        r.register(0, key(2), &req(&[("sip:b@h", None)], None, 1), two)
            .expect("second");
        assert_eq!(
            r.register(0, key(3), &req(&[("sip:c@h", None)], None, 1), two),
            Err(RegisterRefusal::DevicePackageLimit { allowed: 2 })
        );
        // A registered device may refresh and add contacts.
        r.register(0, key(2), &req(&[("sip:b2@h", None)], None, 2), two)
            .expect("refresh of a registered device");
        // A device that does not count is not limited.
        let free = DeviceAllowance {
            counted: false,
            allowed: 2,
        };
        r.register(0, key(4), &req(&[("sip:d@h", None)], None, 1), free)
            .expect("uncounted device");
        r.register(0, key(1), &req(&[("sip:a@h", Some(0))], None, 2), two)
            .expect("unregister");
        r.register(0, key(3), &req(&[("sip:c@h", None)], None, 1), two)
            .expect("a freed place is usable");
        r.check_invariants();
    }

    #[test]
    fn keepalive_failure_makes_unavailable_and_traffic_restores() {
        let mut r = Registrar::new(RegistrarConfig::default());
        r.register(0, key(1), &req(&[("sip:a@h", None)], None, 1), ANY)
            .expect("registers");
        assert!(r.keepalives_due(29_999).is_empty());
        let due = r.keepalives_due(30_000);
        assert_eq!(due.len(), 1);
        assert!(r.keepalives_due(30_001).is_empty(), "one at a time");
        r.keepalive_result(key(1), "sip:a@h", false);
        assert_eq!(r.state(30_001, key(1)), ExtensionState::Unavailable);
        assert!(r.take_dirty());
        r.flow_seen(&flow());
        assert_eq!(r.state(30_002, key(1)), ExtensionState::Online);
    }
}
