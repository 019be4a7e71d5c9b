//! The domain model: pure data and the validation rules V1-V6.

pub mod activity;
pub mod agent_status;
pub mod credentials;
pub mod directory;
pub mod feature_codes;
pub mod hours;
pub mod ids;
pub mod licence;
pub mod queue;
pub mod refusal;
pub mod text;
pub mod user;

pub use ids::*;
pub use refusal::{Checked, Refusal, RefusalCode, RefusalKind};
