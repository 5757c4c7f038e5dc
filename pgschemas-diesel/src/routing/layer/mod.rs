//! Request routing for axum and tower (feature `axum`).
//!
//! [`TenancyLayer`] resolves every request against a [`RouteTable`], from memory:
//!
//! | resolution | answer |
//! |---|---|
//! | a route | the [`Route`](super::Route) goes into the request's extensions, a folder prefix is stripped from the path, the inner service runs |
//! | redirect to primary | `301 Moved Permanently`, `Location: //primary/...` |
//! | suspended tenant | `403 Forbidden` |
//! | unknown or malformed host | `404 Not Found` |
//!
//! Handlers take the [`Route`](super::Route) as an extractor and, for database work, a [`TenantDb`],
//! which runs Diesel (synchronous) on tokio's blocking pool with the tenant's search path;
//! it takes connections from the router's state (any state `S` with
//! `TenantPool: FromRef<S>`, such as the pool itself). With the `async` feature too, the
//! async extractors take an [`AsyncTenantPool`](crate::AsyncTenantPool) from the state
//! instead: `TenantConn` (a diesel-async connection in the tenant, session form, checked
//! out before the handler runs) and `TenantTx` (the transaction form, for PgBouncer's
//! transaction pooling).
//!
//! Wrap the whole `Router` (not `Router::layer`, which runs after routing): the folder
//! prefix must be stripped *before* the router matches the path.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, body::Body, extract::Request, routing::get, ServiceExt};
//! use pgschemas_diesel::routing::layer::{TenancyLayer, TenantDb};
//! use pgschemas_diesel::models::default_catalog;
//! use pgschemas_diesel::{Config, TenantPool};
//! use pgschemas_diesel::routing::{Route, RouteOptions, RouteTable};
//! use tower::Layer;
//!
//! async fn home(route: Route, db: TenantDb) -> String {
//!     let schema = db.run(|conn| Ok(conn.schema().to_string())).await.unwrap_or_default();
//!     format!("hello from {schema}, see {}", route.url("/profile/"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["example.com/acme"]); let database_url = db.url();
//! let config = Config::default();
//! let table = RouteTable::start(database_url, config.clone(), Arc::new(default_catalog()), RouteOptions::default())?;
//! let pool = TenantPool::new(database_url, config)?;
//!
//! let router = Router::new().route("/", get(home)).with_state(pool);
//! let app = TenancyLayer::new(table).layer(router);
//!
//! // What the server answers to `GET http://example.com/acme/` (the router sees `/`):
//! let request = Request::get("/acme/").header("host", "example.com").body(Body::empty())?;
//! let response = tower::ServiceExt::oneshot(app.clone(), request).await?;
//! let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
//! assert_eq!(body, "hello from acme, see /acme/profile/");
//!
//! # let _serve = async || -> std::io::Result<()> { // compiled, not run: it listens for ever
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await?;
//! # Ok(()) };
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Result;

use super::live::RouteTable;
use super::route::{Resolution, Via};

mod extract;
#[cfg(feature = "async")]
mod extract_async;

pub use extract::{MissingTenancy, TenantDb};
#[cfg(feature = "async")]
pub use extract_async::{TenantConn, TenantConnRejection, TenantTx};

struct Settings {
    table: RouteTable,
    header: Option<HeaderName>,
}

/// A tower [`Layer`] that routes each request to its tenant; see the [module](self) docs.
///
/// The resolved tenant is recorded as `tenant.schema` on the request's current `tracing`
/// span (declare the field, e.g. `tenant.schema = tracing::field::Empty` in tower-http's
/// `TraceLayer::make_span_with`; `tracing` cannot add a field a span did not declare), and a
/// debug event `request routed` carries it too.
///
/// ```
/// use pgschemas_diesel::routing::layer::TenancyLayer;
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::routing::{RouteTable, Routes};
///
/// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
/// let layer = TenancyLayer::new(table).header_routing(http::HeaderName::from_static("tenant"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct TenancyLayer {
    settings: Arc<Settings>,
}

impl fmt::Debug for TenancyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenancyLayer")
            .field("table", &self.settings.table)
            .field("header", &self.settings.header)
            .finish()
    }
}

impl TenancyLayer {
    /// Routes by host and path with `table`.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
    /// let layer = pgschemas_diesel::routing::layer::TenancyLayer::new(RouteTable::fixed(Routes::build(&Config::default(), &[], &[])));
    /// ```
    pub fn new(table: RouteTable) -> Self {
        Self {
            settings: Arc::new(Settings {
                table,
                header: None,
            }),
        }
    }

    /// Also routes by the header `name` (django-pgschemas' header routing): when a request
    /// carries it, its value picks the tenant (a static tenant's name or alias, a dynamic
    /// tenant's schema name or id) whatever the host, and an unknown value is answered 404.
    ///
    /// **This is an unauthenticated tenant switch**: anyone who can send the header picks
    /// the tenant. Enable it only behind a trusted gateway that sets or strips the header.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
    /// # let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// let layer = pgschemas_diesel::routing::layer::TenancyLayer::new(table)
    ///     .header_routing(http::HeaderName::from_static("tenant"));
    /// ```
    pub fn header_routing(self, name: HeaderName) -> Self {
        self.with(|s| s.header = Some(name))
    }

    fn with(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings {
            table: self.settings.table.clone(),
            header: self.settings.header.clone(),
        };
        f(&mut settings);
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl<S> Layer<S> for TenancyLayer {
    type Service = Tenancy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tenancy {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The service [`TenancyLayer`] wraps around yours.
#[derive(Clone)]
pub struct Tenancy<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for Tenancy<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenancy")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Tenancy<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TenancyFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let settings = &self.settings;
        let target = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        let header = settings
            .header
            .as_ref()
            .and_then(|name| req.headers().get(name));
        let resolution = match header {
            Some(value) => settings.table.resolve_header(value),
            None => match host(&req) {
                Some(host) => settings.table.resolve(host, target),
                None => Resolution::NotFound,
            },
        };
        let route = match resolution {
            Resolution::Route(route) => route,
            Resolution::Redirect(redirect) => {
                return answer(match HeaderValue::from_str(redirect.location()) {
                    Ok(location) => (
                        StatusCode::MOVED_PERMANENTLY,
                        [(header::LOCATION, location)],
                    )
                        .into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                });
            }
            Resolution::Suspended(_) => {
                return answer(
                    (StatusCode::FORBIDDEN, "this tenant is suspended\n").into_response(),
                );
            }
            Resolution::NotFound => {
                let what = match header {
                    Some(v) => format!(
                        "no tenant for header value {:?}\n",
                        String::from_utf8_lossy(v.as_bytes())
                    ),
                    None => format!(
                        "no tenant for host {:?}\n",
                        host(&req).map(String::from_utf8_lossy).unwrap_or_default()
                    ),
                };
                return answer((StatusCode::NOT_FOUND, what).into_response());
            }
        };
        if route.via() == Via::DynamicFolder {
            let original = std::mem::take(req.uri_mut());
            let target = original.path_and_query().map_or("/", PathAndQuery::as_str);
            match rewrite(&original, &route.strip_prefix(target)) {
                Ok(uri) => {
                    *req.uri_mut() = uri;
                    req.extensions_mut().insert(OriginalUri(original));
                }
                // Cannot happen (the stripped target is a suffix of a valid one): keep it.
                Err(_) => *req.uri_mut() = original,
            }
        }
        let schema = route.schema().as_str();
        tracing::Span::current().record("tenant.schema", schema);
        tracing::debug!("tenant.schema" = schema, "request routed");
        req.extensions_mut().insert(route);
        TenancyFuture {
            kind: Kind::Inner {
                future: self.inner.call(req),
            },
        }
    }
}

/// The request's host: the URI's authority (absolute-form, HTTP/2), else the `Host` header.
fn host<B>(req: &Request<B>) -> Option<&[u8]> {
    match req.uri().authority() {
        Some(authority) => Some(authority.as_str().as_bytes()),
        None => req.headers().get(header::HOST).map(HeaderValue::as_bytes),
    }
}

/// `uri` with its path and query replaced.
fn rewrite(uri: &Uri, path_and_query: &str) -> Result<Uri, http::Error> {
    let path_and_query = PathAndQuery::try_from(path_and_query)?;
    if uri.scheme().is_none() && uri.authority().is_none() {
        // Origin form (`GET /path HTTP/1.1`), the usual case.
        return Ok(Uri::from(path_and_query));
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    Ok(Uri::from_parts(parts)?)
}

fn answer<F, E>(response: Response) -> TenancyFuture<F, E> {
    TenancyFuture {
        kind: Kind::Answer {
            response: Some(response),
            _error: PhantomData,
        },
    }
}

pin_project! {
    /// The response future of [`Tenancy`].
    pub struct TenancyFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        // The inner service is answering.
        Inner {
            #[pin]
            future: F,
        },
        // The layer answered by itself (404, 301, 403).
        Answer {
            response: Option<Response>,
            _error: PhantomData<fn() -> E>,
        },
    }
}

impl<F, E> Future for TenancyFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Answer { response, .. } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))),
        }
    }
}
