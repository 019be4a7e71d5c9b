//! Turning an API request into a ledger command: idempotency keys, random
//! ids, refusals as problems.

use crate::access::Caller;
use crate::problem::Problem;
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use carillon_actors::ledger::{Command, Outcome};
use carillon_actors::model::refusal::code_text;
use carillon_actors::model::{Refusal, RefusalKind};
use carillon_consensus::CommandId;
use rand::RngCore as _;

/// The longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal.code.kind() {
            RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RefusalKind::Conflict => StatusCode::CONFLICT,
            RefusalKind::NotFound => StatusCode::NOT_FOUND,
        };
        Problem::new(status, &code_text(refusal.code), refusal.message)
            .with_rule(refusal.code.rule())
    }
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The command id of a request: the caller's `Idempotency-Key` (scoped to
/// the caller), or a fresh random id.
pub fn command_id(caller_prefix: &str, headers: &HeaderMap) -> Result<CommandId, Problem> {
    match headers.get("idempotency-key") {
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_IDEMPOTENCY_KEY",
                        format!("an Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
                    )
                })?;
            Ok(CommandId(format!("{caller_prefix}:{key}")))
        }
        None => Ok(CommandId(hex(&random_bytes::<16>()))),
    }
}

impl AppState {
    /// Replicates `command` on behalf of `caller` (the ledger records who
    /// changed an agent's session, A4); a refusal becomes a problem.
    pub async fn execute(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        command: Command,
    ) -> Result<Outcome, Problem> {
        let id = command_id(&caller.key_prefix(), headers)?;
        let command = Command::By {
            from: caller.source.map(|ip| ip.to_string()),
            by: caller.author(),
            inner: Box::new(command),
        };
        self.execute_as(id, command).await
    }

    /// Replicates `command` under an explicit command id.
    pub async fn execute_as(&self, id: CommandId, command: Command) -> Result<Outcome, Problem> {
        let response = self.consensus.write(id, &command).await?;
        response.map_err(Problem::from)
    }
}

/// The id of a `Created` outcome.
pub fn created_id(outcome: &Outcome) -> Result<u64, Problem> {
    match outcome {
        Outcome::Created { id } => Ok(*id),
        other => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("expected an id, the ledger answered {other:?}"),
        )),
    }
}
