//! The rules every pool follows when it takes a connection, whatever the pool library and
//! whether it is sync or async: how many connections a checkout tries, what a failed proof
//! means for the connection, and when a connection may go back to the pool (the open
//! transaction's rule, and the tenants a connection has served).
//!
//! The statements themselves live in `checkout`; the pools (`pool`, `pool_async`) only
//! run them and act on these rules' answers.

use std::collections::HashSet;

use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};

use crate::checkout::Refusal;
use crate::config::Config;
use crate::error::{Error, SessionProblem};
use crate::name::SchemaName;
use crate::path::SearchPath;

/// How many connections a checkout tries before it reports the last one's failure.
const CHECKOUT_ATTEMPTS: usize = 3;

/// The attempts of one checkout: counts them and keeps the last connection's failure.
///
/// A connection whose server connection turned out closed (its backend was killed or the
/// server restarted while it sat idle) says nothing about whether the checkout can succeed:
/// it does not count as an attempt, up to the pool's size of them (no more such connections
/// can be idle in it), so a pool whose idle connections all died makes new ones instead of
/// refusing the caller.
pub(crate) struct Attempts {
    made: usize,
    dead: usize,
    dead_allowed: usize,
    last: Option<Error>,
}

/// What to do with a connection whose proof failed.
pub(crate) enum Verdict {
    /// The schema was refused: the connection is sound and goes back to the pool; the error
    /// is the caller's, at once.
    Refused(Error),
    /// The connection cannot be trusted: discard it and try another one.
    Discard,
}

impl Attempts {
    /// No attempt made yet, on a pool of `pool_size` connections.
    pub(crate) fn new(pool_size: usize) -> Self {
        Self {
            made: 0,
            dead: 0,
            dead_allowed: pool_size,
            last: None,
        }
    }

    /// Counts one more attempt, if the checkout may make it.
    pub(crate) fn another(&mut self) -> bool {
        if self.made < CHECKOUT_ATTEMPTS {
            self.made += 1;
            true
        } else {
            false
        }
    }

    /// Records a failed proof and says what it means for the connection.
    pub(crate) fn failed(&mut self, refusal: Refusal) -> Verdict {
        match refusal {
            Refusal::Schema(e) => {
                crate::observe::refused(e.schema().unwrap_or_default(), &e);
                Verdict::Refused(e)
            }
            Refusal::Connection(e) => {
                crate::observe::discarded(e.schema(), "checkout_failed", Some(&e));
                if is_closed(&e) && self.dead < self.dead_allowed {
                    self.dead += 1;
                    self.made -= 1;
                }
                self.last = Some(e);
                Verdict::Discard
            }
        }
    }

    /// The caller's error once no attempt is left: the last connection's failure.
    pub(crate) fn exhausted(self, path: &SearchPath) -> Error {
        self.last.unwrap_or_else(|| Error::SessionState {
            schema: path.schema().to_string(),
            reason: SessionProblem::NoConnectionPassed,
        })
    }
}

/// Whether `e` says the connection's server connection is closed (by Diesel's error kind,
/// never by the message's text).
fn is_closed(e: &Error) -> bool {
    matches!(
        e,
        Error::Database {
            source: DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _),
            ..
        }
    )
}

/// Whether a connection may go back to the pool after a transaction form, from whether its
/// driver reports a transaction still open: only a known "no" lets it back; still open, or
/// unknown (the driver's record is broken), it is never handed out again.
pub(crate) fn may_return(transaction_open: QueryResult<bool>) -> bool {
    matches!(transaction_open, Ok(false))
}

/// The distinct tenant schemas a connection has served, kept beside it for
/// [`Config::max_tenants_per_connection`]: bookkeeping only, nothing is sent for it. A
/// connection that is [`spent`](Self::spent) serves the checkout that made it so, and is
/// never handed out again.
#[derive(Debug, Default)]
pub(crate) struct Served {
    schemas: HashSet<SchemaName>,
    spent: bool,
}

impl Served {
    /// Records that the connection was given `path` under `config` (a checkout, a nested
    /// switch). The neutral path (the shared schema) does not count, nor does a schema served
    /// before; without a limit nothing is kept.
    pub(crate) fn record(&mut self, path: &SearchPath, config: &Config) {
        let Some(limit) = config.max_tenants_per_connection() else {
            return;
        };
        if self.spent || path.schema() == config.shared_schema() {
            return;
        }
        if !self.schemas.contains(path.schema()) {
            self.schemas.insert(path.schema().clone());
        }
        self.spent = self.schemas.len() >= limit;
    }

    /// Whether the connection has served its configured number of tenants: it must not go
    /// back to the pool.
    pub(crate) fn spent(&self) -> bool {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::tests::path;

    #[test]
    fn a_checkout_tries_three_connections_and_reports_the_last_failure() {
        let mut attempts = Attempts::new(1);
        let mut made = 0;
        while attempts.another() {
            made += 1;
            let refusal = Refusal::Connection(Error::SessionState {
                schema: format!("attempt{made}"),
                reason: SessionProblem::TransactionOpen,
            });
            assert!(matches!(attempts.failed(refusal), Verdict::Discard));
        }
        assert_eq!(made, 3);
        assert!(matches!(
            attempts.exhausted(&path()),
            Error::SessionState { schema, .. } if schema == "attempt3"
        ));
    }

    #[test]
    fn a_refused_schema_ends_the_checkout_and_keeps_the_connection() {
        let mut attempts = Attempts::new(1);
        assert!(attempts.another());
        let refusal = Refusal::Schema(Error::SchemaNotFound {
            schema: "t1".into(),
        });
        assert!(matches!(
            attempts.failed(refusal),
            Verdict::Refused(Error::SchemaNotFound { .. })
        ));
        assert!(matches!(
            Attempts::new(1).exhausted(&path()),
            Error::SessionState {
                reason: SessionProblem::NoConnectionPassed,
                ..
            }
        ));
    }

    #[test]
    fn dead_connections_do_not_count_up_to_the_pool_size() {
        let closed = || {
            Refusal::Connection(Error::Database {
                schema: Some("t1".into()),
                source: DieselError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection,
                    Box::new("server closed the connection".to_owned()),
                ),
            })
        };
        let mut attempts = Attempts::new(4);
        let mut tried = 0;
        while attempts.another() {
            tried += 1;
            assert!(matches!(attempts.failed(closed()), Verdict::Discard));
        }
        // 4 dead ones free, then the usual 3 attempts.
        assert_eq!(tried, 4 + CHECKOUT_ATTEMPTS);
        assert!(matches!(
            attempts.exhausted(&path()),
            Error::Database { .. }
        ));
    }

    #[test]
    fn a_connection_is_spent_at_its_nth_distinct_tenant() -> crate::error::Result<()> {
        let limited = Config::builder().max_tenants_per_connection(3).build()?;
        let unlimited = Config::default();
        let mut served = Served::default();
        let mut never = Served::default();
        // (schema, spent after it)
        for (schema, spent) in [
            ("a", false),
            ("public", false), // the neutral path
            ("b", false),
            ("a", false), // again
            ("b", false),
            ("c", true),
            ("d", true),
        ] {
            served.record(&limited.search_path(&schema)?, &limited);
            never.record(&unlimited.search_path(&schema)?, &unlimited);
            assert_eq!(served.spent(), spent, "after {schema}");
            assert!(!never.spent());
        }
        assert!(never.schemas.is_empty(), "nothing kept without a limit");
        assert_eq!(served.schemas.len(), 3, "nothing kept once spent");
        let mut one = Served::default();
        let single = Config::builder().max_tenants_per_connection(1).build()?;
        one.record(single.neutral_path(), &single);
        assert!(!one.spent());
        one.record(&single.search_path(&"a")?, &single);
        assert!(one.spent());
        Ok(())
    }

    #[test]
    fn only_a_known_closed_transaction_lets_a_connection_back() {
        assert!(may_return(Ok(false)));
        assert!(!may_return(Ok(true)));
        assert!(!may_return(Err(
            diesel::result::Error::BrokenTransactionManager
        )));
    }
}
