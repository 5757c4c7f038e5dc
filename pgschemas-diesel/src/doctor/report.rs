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
/// The items a check found, summarised for a line of output: how many, and the first
/// [`FEW`] of them, so that a check over 10,000 tenants prints a line, not 10,000 names.
pub(super) fn few<T: fmt::Display>(items: &[T], separator: &str) -> String {
    let shown: Vec<String> = items.iter().take(FEW).map(ToString::to_string).collect();
    match items.len() {
        n if n <= FEW => shown.join(separator),
        n => format!("{n}, first {FEW}: {} ...", shown.join(separator)),
    }
}

/// How many of a check's items [`few`] names.
pub(super) const FEW: usize = 5;

#[cfg(test)]
mod few_tests {
    use super::few;

    #[test]
    fn a_long_list_is_counted_and_cut() {
        let names: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
        assert_eq!(few(&names, ", "), "10000, first 5: t0, t1, t2, t3, t4 ...");
        assert_eq!(few(&names[..2], "; "), "t0; t1");
        assert_eq!(few::<String>(&[], ", "), "");
    }
}
