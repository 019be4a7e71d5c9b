//! Identifier newtypes. The ledger assigns every id from one counter, so an
//! id never names two objects, even across tenants.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A tenant (a "virtual PBX", U1).
    TenantId
);
id_type!(
    /// A branch of a tenant (U1).
    BranchId
);
id_type!(
    /// A user (U2).
    UserId
);
id_type!(
    /// A device (D1).
    DeviceId
);
id_type!(
    /// A public number owned by a tenant (D2).
    NumberId
);
id_type!(
    /// A queue (Q).
    QueueId
);
id_type!(
    /// A skill (A7).
    SkillId
);
id_type!(
    /// A group of users (A7).
    GroupId
);
id_type!(
    /// A pause type (A5).
    PauseTypeId
);
id_type!(
    /// A platform operator account.
    OperatorId
);
id_type!(
    /// An API token for automation.
    ApiTokenId
);
