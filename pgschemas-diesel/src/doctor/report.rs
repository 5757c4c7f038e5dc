//! What `doctor` reports: one [`Check`] per check, in a [`DoctorReport`].

use std::fmt;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    /// Nothing to do.
    Pass,
    /// Works, but is worth a look.
    Warn,
    /// Will break something.
    Fail,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        })
    }
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name, such as `shared-schema-create`.
    pub name: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found, with the figures.
    pub summary: String,
    /// What to do about it, when there is something to do.
    pub fix: Option<String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.status, self.name, self.summary)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every check's finding, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorReport {
    /// The findings.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst status found.
    pub fn worst(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Pass)
    }

    /// The check named `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Check {
    /// A check that found nothing to do.
    pub(super) fn pass(name: &'static str, summary: String) -> Self {
        Self::new(name, CheckStatus::Pass, summary, None)
    }

    /// A check that found something, of `status`, and what to do about it.
    pub(super) fn found(
        name: &'static str,
        status: CheckStatus,
        summary: String,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, status, summary, Some(fix.into()))
    }

    fn new(name: &'static str, status: CheckStatus, summary: String, fix: Option<String>) -> Self {
        Self {
            name,
            status,
            summary,
            fix,
        }
    }
}
