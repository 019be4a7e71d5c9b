//! Agent sessions (A1, A4, A5): login from one or more terminals, check-in
//! and check-out, static members, typed pauses, and pauses or logouts asked
//! for during an activity that take effect when it ends.

use super::calls::Voice;
use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::agent_status::{AgentState, Author, SessionAction, SessionChange, SystemRule};
use crate::model::refusal::{ensure, Checked};
use crate::model::user::Role;
use crate::model::{PauseTypeId, QueueId, Refusal, RefusalCode, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The most terminals one agent may be logged in from.
pub const MAX_TERMINALS: usize = 8;
/// The most open activities one agent may have (voice is one; other channels add).
pub const MAX_ACTIVITIES: usize = 32;

/// What happens when the current activity ends (A5 "after this call").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AfterActivity {
    /// Pause with this type.
    Pause {
        /// The pause type.
        pause_type: PauseTypeId,
    },
    /// Log out of every terminal.
    Logout,
}

/// A current pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivePause {
    /// The pause type.
    pub pause_type: PauseTypeId,
    /// Since when.
    pub since_ms: u64,
}

/// A logged-in agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSession {
    /// The agent.
    pub user: UserId,
    /// Terminals (panel tabs, phones, apps) logged in.
    pub terminals: BTreeSet<String>,
    /// When the first terminal logged in.
    pub logged_in_at_ms: u64,
    /// Queues checked in (static memberships included).
    pub checked_in: BTreeSet<QueueId>,
    /// Current pause.
    pub pause: Option<ActivePause>,
    /// Open activities.
    pub activities: BTreeSet<String>,
    /// What happens when the last activity ends.
    pub after_activity: Option<AfterActivity>,
    /// Since when no device of the agent answers (A8: disconnected, not
    /// offered calls), as the agent's actor saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since_ms: Option<u64>,
}

impl AgentSession {
    pub(crate) fn uses_pause_type(&self, id: PauseTypeId) -> bool {
        self.pause.is_some_and(|p| p.pause_type == id)
            || self.after_activity == Some(AfterActivity::Pause { pause_type: id })
    }
}

/// The A4 state of an agent that is `present` (logged in, or a static
/// member), with its voice work, pause, and whether a device answers (A8).
pub fn agent_state(present: bool, voice: &Voice, paused: bool, reachable: bool) -> AgentState {
    if !present {
        return AgentState::LoggedOut;
    }
    match voice {
        Voice::Offered { .. } => AgentState::Offered,
        Voice::Talking { .. } => AgentState::Talking,
        Voice::WrapUp { .. } => AgentState::WrapUp,
        Voice::Idle if paused => AgentState::Paused,
        Voice::Idle if !reachable => AgentState::Disconnected,
        Voice::Idle => AgentState::Idle,
    }
}

/// What the ledger knows of an agent's state (A4, A8), the same on every
/// node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStatus {
    /// The agent.
    pub user: UserId,
    /// Its A4 state (disconnected as its actor recorded it).
    pub state: AgentState,
    /// Since when no device of it answers (A8).
    pub unreachable_since_ms: Option<u64>,
    /// The last change of its session: when, who caused it, what.
    pub last_change: Option<SessionChange>,
}

impl TenantState {
    /// `user`'s state as the ledger knows it (`None` for a user who is not
    /// an agent of this tenant).
    pub fn agent_status(&self, user: UserId) -> Option<AgentStatus> {
        let u = self.users.get(&user)?;
        if !u.spec.roles.contains(&Role::Agent) {
            return None;
        }
        let session = self.sessions.get(&user);
        let logged_in = session.is_some_and(|s| !s.terminals.is_empty());
        let present = logged_in || !self.static_queues(user).is_empty();
        let unreachable_since_ms = session.and_then(|s| s.unreachable_since_ms);
        let state = agent_state(
            present,
            &self.agent_voice(user).voice,
            session.is_some_and(|s| s.pause.is_some()),
            unreachable_since_ms.is_none(),
        );
        Some(AgentStatus {
            user,
            state,
            unreachable_since_ms,
            last_change: self.last_changes.get(&user).cloned(),
        })
    }

    /// Records `user`'s last session change (A4).
    pub(crate) fn note_change(&mut self, user: UserId, change: SessionChange) {
        if self.users.contains_key(&user) {
            self.last_changes.insert(user, change);
        }
    }

    /// `user`'s last session change, also after logout.
    pub fn last_change(&self, user: UserId) -> Option<&SessionChange> {
        self.last_changes.get(&user)
    }

    /// A8: the agent's actor says whether any of its devices answers. An
    /// agent without a session has nothing to record.
    pub(crate) fn set_reachable(
        &mut self,
        user: UserId,
        reachable: bool,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let Some(session) = self.sessions.get_mut(&user) else {
            return Ok(Outcome::Done);
        };
        let what = match (reachable, session.unreachable_since_ms) {
            (false, None) => {
                session.unreachable_since_ms = Some(now_ms);
                SessionAction::Disconnected
            }
            (true, Some(_)) => {
                session.unreachable_since_ms = None;
                SessionAction::Reconnected
            }
            _ => return Ok(Outcome::Done),
        };
        self.note_change(
            user,
            SessionChange {
                at_ms: now_ms,
                by: Author::System {
                    rule: SystemRule::Reachability,
                },
                what,
            },
        );
        Ok(Outcome::Done)
    }

    fn static_queues(&self, user: UserId) -> BTreeSet<QueueId> {
        self.queues
            .values()
            .filter(|q| q.spec.static_members.contains(&user))
            .map(|q| q.id)
            .collect()
    }

    /// Checks logged-in static members of `queue` in (A1).
    pub(crate) fn sync_static_members(&mut self, queue: QueueId) {
        let members = self
            .queues
            .get(&queue)
            .map(|q| q.spec.static_members.clone())
            .unwrap_or_default();
        for member in members {
            if let Some(session) = self.sessions.get_mut(&member) {
                session.checked_in.insert(queue);
            }
        }
    }

    fn session_mut(&mut self, user: UserId) -> Checked<&mut AgentSession> {
        self.user(user)?;
        self.sessions
            .get_mut(&user)
            .ok_or_else(|| Refusal::new(RefusalCode::NotLoggedIn, "the agent is not logged in"))
    }

    pub(crate) fn login(
        &mut self,
        user: UserId,
        terminal: String,
        now_ms: u64,
    ) -> Checked<Outcome> {
        let agent = self.user(user)?;
        ensure(
            agent.spec.can_log_in() && agent.spec.roles.contains(&Role::Agent),
            RefusalCode::AgentCannotLogIn,
            || {
                "only an active contact-centre user with the agent role and panel or app access logs in".into()
            },
        )?;
        ensure(
            !terminal.is_empty() && terminal.len() <= 128,
            RefusalCode::NameRequired,
            || "a terminal id has 1 to 128 characters".into(),
        )?;
        crate::model::text::ID.check("terminal", &terminal)?;
        let mut static_queues = self.static_queues(user);
        static_queues.extend(agent.spec.login_queues.iter().copied());
        let session = self.sessions.entry(user).or_insert_with(|| AgentSession {
            user,
            terminals: BTreeSet::new(),
            logged_in_at_ms: now_ms,
            checked_in: static_queues,
            pause: None,
            activities: BTreeSet::new(),
            after_activity: None,
            unreachable_since_ms: None,
        });
        ensure(
            !session.terminals.contains(&terminal),
            RefusalCode::AlreadyLoggedIn,
            || "this terminal is already logged in".into(),
        )?;
        ensure(
            session.terminals.len() < MAX_TERMINALS,
            RefusalCode::AlreadyLoggedIn,
            || format!("an agent is logged in from at most {MAX_TERMINALS} terminals"),
        )?;
        session.terminals.insert(terminal);
        if session.after_activity == Some(AfterActivity::Logout) {
            // Logging in again cancels a pending logout.
            session.after_activity = None;
        }
        self.bind_fixed_line(user);
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn logout(
        &mut self,
        user: UserId,
        terminal: &str,
        _now_ms: u64,
    ) -> Checked<Outcome> {
        let session = self.session_mut(user)?;
        ensure(
            session.terminals.contains(terminal),
            RefusalCode::NotLoggedIn,
            || "this terminal is not logged in".into(),
        )?;
        if session.terminals.len() > 1 {
            // Closing one of several terminals changes nothing else (A1).
            session.terminals.remove(terminal);
            return Ok(Outcome::Session { deferred: false });
        }
        if !session.activities.is_empty() {
            session.after_activity = Some(AfterActivity::Logout);
            return Ok(Outcome::Session { deferred: true });
        }
        // Logout checks out of every queue; static memberships stay in the
        // queue configuration and return at the next login.
        self.end_session(user);
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn check_in(&mut self, user: UserId, queue: QueueId) -> Checked<Outcome> {
        ensure(
            self.queues.contains_key(&queue),
            RefusalCode::NotFound,
            || "no such queue in this tenant".into(),
        )?;
        let session = self.session_mut(user)?;
        ensure(
            session.checked_in.insert(queue),
            RefusalCode::AlreadyCheckedIn,
            || "the agent is already checked in to this queue".into(),
        )?;
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn check_out(&mut self, user: UserId, queue: QueueId) -> Checked<Outcome> {
        ensure(
            self.queues.contains_key(&queue),
            RefusalCode::NotFound,
            || "no such queue in this tenant".into(),
        )?;
        let session = self.session_mut(user)?;
        ensure(
            session.checked_in.remove(&queue),
            RefusalCode::NotCheckedIn,
            || "the agent is not checked in to this queue".into(),
        )?;
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn pause(
        &mut self,
        user: UserId,
        pause_type: PauseTypeId,
        now_ms: u64,
    ) -> Checked<Outcome> {
        ensure(
            self.pause_types.contains_key(&pause_type),
            RefusalCode::NotFound,
            || "no such pause type in this tenant".into(),
        )?;
        let session = self.session_mut(user)?;
        ensure(session.pause.is_none(), RefusalCode::AlreadyPaused, || {
            "the agent is already paused".into()
        })?;
        if !session.activities.is_empty() {
            session.after_activity = Some(AfterActivity::Pause { pause_type });
            return Ok(Outcome::Session { deferred: true });
        }
        session.pause = Some(ActivePause {
            pause_type,
            since_ms: now_ms,
        });
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn unpause(&mut self, user: UserId) -> Checked<Outcome> {
        let session = self.session_mut(user)?;
        if session.pause.take().is_some() {
            return Ok(Outcome::Session { deferred: false });
        }
        if matches!(session.after_activity, Some(AfterActivity::Pause { .. })) {
            session.after_activity = None;
            return Ok(Outcome::Session { deferred: false });
        }
        Err(Refusal::new(
            RefusalCode::NotPaused,
            "the agent is not paused",
        ))
    }

    pub(crate) fn begin_activity(&mut self, user: UserId, activity: String) -> Checked<Outcome> {
        let session = self.session_mut(user)?;
        ensure(
            session.activities.len() < MAX_ACTIVITIES,
            RefusalCode::ActivityUnknown,
            || format!("an agent has at most {MAX_ACTIVITIES} open activities"),
        )?;
        ensure(
            session.activities.insert(activity),
            RefusalCode::ActivityUnknown,
            || "this activity is already open".into(),
        )?;
        Ok(Outcome::Session { deferred: false })
    }

    pub(crate) fn end_activity(
        &mut self,
        user: UserId,
        activity: &str,
        now_ms: u64,
    ) -> Checked<Outcome> {
        let session = self.session_mut(user)?;
        ensure(
            session.activities.remove(activity),
            RefusalCode::ActivityUnknown,
            || "no such open activity for this agent".into(),
        )?;
        if !session.activities.is_empty() {
            return Ok(Outcome::Session { deferred: false });
        }
        match session.after_activity.take() {
            Some(AfterActivity::Pause { pause_type }) => {
                session.pause = Some(ActivePause {
                    pause_type,
                    since_ms: now_ms,
                });
            }
            Some(AfterActivity::Logout) => self.end_session(user),
            None => {
                if session.terminals.is_empty() {
                    self.end_session(user);
                }
            }
        }
        Ok(Outcome::Session { deferred: false })
    }
}
