//! The chaos report: what was done to the cluster, what was observed, and
//! whether every invariant held.

use std::fmt;

/// Events and invariant checks of one chaos run.
#[derive(Debug, Default, Clone)]
pub struct ChaosReport {
    events: Vec<String>,
    violations: Vec<String>,
    checks: u64,
}

impl ChaosReport {
    /// Records a fault or an action (`"SIGKILL node 2 (leader)"`).
    pub fn event(&mut self, what: impl Into<String>) {
        self.events.push(what.into());
    }

    /// Records one invariant check; a failed one is kept as a violation.
    pub fn check(&mut self, holds: bool, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !holds {
            self.violations.push(what());
        }
    }

    /// Number of checks made.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// The violations seen.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Panics with the whole report when any invariant was violated.
    pub fn assert_clean(&self) {
        assert!(self.violations.is_empty(), "invariants violated:\n{self}");
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos report: {} checks, {} violations",
            self.checks,
            self.violations.len()
        )?;
        for event in &self.events {
            writeln!(f, "  event: {event}")?;
        }
        for violation in self.violations.iter().take(50) {
            writeln!(f, "  VIOLATION: {violation}")?;
        }
        Ok(())
    }
}
