//! Background jobs that carry the tenant that enqueued them.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::str::FromStr;

use crate::error::{Error, JobFault, Result};
use crate::name::SchemaName;

use super::{required, scope};

/// Separates the tenant from the payload in a job's string form; no schema name holds it.
const SEPARATOR: char = ':';

/// A background job: a payload and the tenant that enqueued it.
///
/// Made in the current tenant ([`new`](Self::new) fails closed outside any scope), stored
/// in a queue as a string (`Display`, `tenant:payload`) or, with the `serde` feature, as
/// `{"tenant": .., "payload": ..}`, and read back on a worker, where [`run`](Self::run) runs
/// it inside its tenant. Reading it back validates the tenant as a schema name: a job whose
/// stored tenant was tampered with is refused, never run somewhere else.
///
/// ```
/// use pgschemas_diesel::{Error, SchemaName, tenant};
/// use pgschemas_diesel::tenant::TenantJob;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let job = tenant::scope(SchemaName::new("customer1")?, async {
///     TenantJob::new(String::from("send-invoice:42"))
/// })
/// .await?;
/// let stored = job.to_string();
/// assert_eq!(stored, "customer1:send-invoice:42");
///
/// let job: TenantJob<String> = stored.parse()?;
/// let done = job.run(|task| async move {
///     Ok::<_, Error>(format!("{task} for {}", tenant::require()?))
/// });
/// assert_eq!(done.await?, "send-invoice:42 for customer1");
///
/// let tampered = "pg_catalog:send-invoice:42".parse::<TenantJob<String>>();
/// assert!(matches!(tampered, Err(Error::InvalidJob { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantJob<T> {
    tenant: SchemaName,
    payload: T,
}

impl<T> TenantJob<T> {
    /// A job of `payload` in the current tenant.
    ///
    /// # Errors
    ///
    /// [`Error::NoCurrentTenant`] outside any tenant scope.
    ///
    /// ```
    /// use pgschemas_diesel::Error;
    /// use pgschemas_diesel::tenant::TenantJob;
    ///
    /// assert!(matches!(TenantJob::new(1), Err(Error::NoCurrentTenant { .. })));
    /// ```
    pub fn new(payload: T) -> Result<Self> {
        Ok(Self {
            tenant: required("TenantJob::new")?,
            payload,
        })
    }

    /// The tenant that enqueued the job.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job: pgschemas_diesel::tenant::TenantJob<u8> = "acme:1".parse()?;
    /// assert_eq!(job.tenant(), "acme");
    /// # Ok(()) }
    /// ```
    pub fn tenant(&self) -> &SchemaName {
        &self.tenant
    }

    /// The job's payload.
    ///
    /// ```
    /// let job: pgschemas_diesel::tenant::TenantJob<u8> = "acme:1".parse()?;
    /// assert_eq!(*job.payload(), 1);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The tenant and the payload.
    ///
    /// ```
    /// let job: pgschemas_diesel::tenant::TenantJob<u8> = "acme:1".parse()?;
    /// let (tenant, payload) = job.into_parts();
    /// assert_eq!((tenant.as_str(), payload), ("acme", 1));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn into_parts(self) -> (SchemaName, T) {
        (self.tenant, self.payload)
    }

    /// Runs `f` on the payload inside the job's tenant (a [`scope`]), wherever the job was
    /// read back: [`current`](super::current) is the enqueuing tenant for the whole of `f`.
    ///
    /// ```
    /// use pgschemas_diesel::tenant::{self, TenantJob};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job: TenantJob<u8> = "acme:1".parse()?;
    /// let tenant = job.run(|_| async { tenant::require() }).await?;
    /// assert_eq!(tenant, "acme");
    /// # Ok(()) }
    /// ```
    pub async fn run<F, Fut>(self, f: F) -> Fut::Output
    where
        F: FnOnce(T) -> Fut,
        Fut: Future,
    {
        let Self { tenant, payload } = self;
        scope(tenant, async move { f(payload).await }).await
    }
}

impl<T: fmt::Display> fmt::Display for TenantJob<T> {
    /// `tenant:payload`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.tenant, self.payload)
    }
}

impl<T> FromStr for TenantJob<T>
where
    T: FromStr,
    T::Err: Into<Box<dyn StdError + Send + Sync>>,
{
    type Err = Error;

    /// Reads `tenant:payload` back, validating the tenant as a schema name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidJob`] when there is no `:`, the tenant is not a valid schema name or
    /// the payload does not parse.
    fn from_str(stored: &str) -> Result<Self> {
        let (tenant, payload) = stored
            .split_once(SEPARATOR)
            .ok_or_else(|| refused(None, JobFault::NoTenant, None))?;
        let tenant = stored_tenant(tenant)?;
        let payload = payload
            .parse::<T>()
            .map_err(|e| refused(Some(tenant.as_str()), JobFault::Payload, Some(e.into())))?;
        Ok(Self { tenant, payload })
    }
}

/// Validates a job's stored tenant as a schema name.
fn stored_tenant(tenant: &str) -> Result<SchemaName> {
    SchemaName::new(tenant).map_err(|e| match e {
        Error::InvalidSchemaName { reason, .. } => {
            refused(Some(tenant), JobFault::InvalidTenant(reason), None)
        }
        other => other,
    })
}

fn refused(
    tenant: Option<&str>,
    reason: JobFault,
    source: Option<Box<dyn StdError + Send + Sync>>,
) -> Error {
    Error::InvalidJob {
        tenant: tenant.map(str::to_owned),
        reason,
        source,
    }
}

#[cfg(feature = "serde")]
mod serde_form {
    //! The serde form: `{"tenant": "customer1", "payload": ..}`.

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{TenantJob, stored_tenant};

    #[derive(Serialize)]
    struct Borrowed<'a, T> {
        tenant: &'a str,
        payload: &'a T,
    }

    #[derive(Deserialize)]
    struct Owned<T> {
        tenant: String,
        payload: T,
    }

    impl<T: Serialize> Serialize for TenantJob<T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Borrowed {
                tenant: self.tenant.as_str(),
                payload: &self.payload,
            }
            .serialize(serializer)
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for TenantJob<T> {
        /// Reads the job back, validating the tenant as a schema name: a job whose tenant is
        /// not one is refused with the message of [`Error::InvalidJob`](crate::Error::InvalidJob).
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let Owned { tenant, payload } = Owned::deserialize(deserializer)?;
            let tenant = stored_tenant(&tenant).map_err(|e| D::Error::custom(e.report()))?;
            Ok(Self { tenant, payload })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::name::InvalidReason;

    #[test]
    fn the_string_form_round_trips() {
        for stored in ["acme:1", "t_2:0", "a:4294967295"] {
            let job: TenantJob<u32> = stored.parse().unwrap();
            assert_eq!(job.to_string(), stored);
        }
        let job: TenantJob<String> = "acme:a:b:".parse().unwrap();
        assert_eq!(
            (job.tenant().as_str(), job.payload().as_str()),
            ("acme", "a:b:")
        );
    }

    #[test]
    fn a_bad_stored_form_is_refused_saying_why() {
        let cases: &[(&str, Option<&str>, JobFault)] = &[
            ("42", None, JobFault::NoTenant),
            (
                ":42",
                Some(""),
                JobFault::InvalidTenant(InvalidReason::Empty),
            ),
            (
                "Acme:42",
                Some("Acme"),
                JobFault::InvalidTenant(InvalidReason::UpperCase),
            ),
            (
                "pg_catalog:42",
                Some("pg_catalog"),
                JobFault::InvalidTenant(InvalidReason::Reserved),
            ),
            (
                "a;b:42",
                Some("a;b"),
                JobFault::InvalidTenant(InvalidReason::BadCharacter(';')),
            ),
            ("acme:x", Some("acme"), JobFault::Payload),
        ];
        for (stored, want_tenant, want_reason) in cases {
            match stored.parse::<TenantJob<u32>>() {
                Err(Error::InvalidJob {
                    tenant,
                    reason,
                    source,
                }) => {
                    assert_eq!(tenant.as_deref(), *want_tenant, "{stored}");
                    assert_eq!(reason, *want_reason, "{stored}");
                    assert_eq!(source.is_some(), reason == JobFault::Payload, "{stored}");
                }
                other => panic!("{stored}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn the_message_names_the_tenant_and_the_reason() {
        let err = "Acme:1".parse::<TenantJob<u32>>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing a job of tenant \"Acme\": its tenant is not a valid schema name: {}",
                InvalidReason::UpperCase
            )
        );
        let err = "acme:x".parse::<TenantJob<u32>>().unwrap_err();
        assert_eq!(
            err.report().to_string(),
            "refusing a job of tenant \"acme\": its payload could not be read: invalid digit found in string"
        );
    }
}
