//! Extension state (D7) as the admin API shows it. The SIP edge lives in
//! the node, which depends on this crate, so the edge hands its view in
//! through [`Presence`]; without an edge, every device is unavailable.

use std::collections::BTreeMap;

use carillon_actors::model::ids::{DeviceId, TenantId};
use serde::Serialize;
use utoipa::ToSchema;

/// One registered contact of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BindingInfo {
    /// Contact URI.
    pub contact: String,
    /// `udp`, `tcp`, `ws`, `tls` or `wss`.
    pub transport: String,
    /// Source address of the registration (ip:port).
    pub source: String,
    /// Seconds until the binding expires.
    pub expires_s: u32,
    /// Whether it answered its last keepalive.
    pub reachable: bool,
    /// The phone's User-Agent.
    pub user_agent: Option<String>,
}

/// The registration state of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// A current binding answered its last keepalive.
    pub online: bool,
    /// Current bindings.
    pub bindings: Vec<BindingInfo>,
}

/// Where the API reads registrations from.
pub trait Presence: Send + Sync + std::fmt::Debug {
    /// Registered devices of `tenant`.
    fn registrations(&self, tenant: TenantId) -> BTreeMap<DeviceId, Registration>;
    /// Whether a SIP edge runs on this node (otherwise nothing can be
    /// online here).
    fn serving(&self) -> bool;
}

/// The presence of a node without a SIP edge.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSipEdge;

impl Presence for NoSipEdge {
    fn registrations(&self, _tenant: TenantId) -> BTreeMap<DeviceId, Registration> {
        BTreeMap::new()
    }

    fn serving(&self) -> bool {
        false
    }
}

/// Extension state (D7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionState {
    /// Registered and answering.
    Online,
    /// Not registered, or not answering keepalives.
    Unavailable,
}

/// A registering device and its extension state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Extension {
    /// The device.
    pub device: DeviceId,
    /// Its name.
    pub name: String,
    /// SIP username.
    pub sip_username: Option<String>,
    /// Short number.
    pub short_number: Option<String>,
    /// Extension state.
    pub state: ExtensionState,
    /// Current registrations (on the node that answers; registrations are
    /// not replicated).
    pub bindings: Vec<BindingInfo>,
}
