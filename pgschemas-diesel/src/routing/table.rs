//! Building a route snapshot from the configuration and the catalog's rows: each row
//! validated, each route claimed once, the lookup indexes filled.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::catalog::{CatalogRows, DomainRecord, InvalidRow, TenantRecord};
use crate::config::Config;
use crate::domain::{is_valid_folder, route_host, route_label};

use super::route::{Place, Tenant};
use super::snapshot::{DynRoute, HostSlot, Map, NO_FOLDERS, Routes};

impl Routes {
    /// Builds the table from the configuration's static tenants and the catalog's records.
    ///
    /// Resolution order (django-pgschemas' `route_domain`): a static tenant's domain; a
    /// dynamic domain with the request's first path segment as folder; a dynamic domain
    /// without folder; a static tenant's fallback domain; else not found.
    ///
    /// ```
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::routing::Routes;
    /// let routes = Routes::build(&Config::default(), &[], &[]);
    /// assert_eq!(routes.route_count(), 0);
    /// ```
    pub fn build(config: &Config, tenants: &[TenantRecord], domains: &[DomainRecord]) -> Self {
        let mut b = Builder::default();
        b.statics(config);
        b.dynamics(config, tenants, domains);
        b.finish()
    }

    /// Builds the table from one read of the catalog: the rows the read left out come
    /// first in [`invalid_rows`](Self::invalid_rows) and [`warnings`](Self::warnings).
    pub(crate) fn from_rows(config: &Config, rows: &CatalogRows) -> Self {
        let mut b = Builder::default();
        for row in &rows.invalid {
            b.leave_out(row.clone());
        }
        b.statics(config);
        b.dynamics(config, &rows.tenants, &rows.domains);
        b.finish()
    }
}

/// Domain rows: normalised host, folder, the record.
type Rows<'a> = Vec<(String, Option<String>, &'a DomainRecord)>;

/// Accepted tenants by id, each with its domain rows.
type ById<'a> = HashMap<&'a str, (&'a TenantRecord, Rows<'a>)>;

#[derive(Default)]
struct Builder {
    hosts: Map<Arc<str>, HostSlot>,
    folders: Vec<Map<Arc<str>, DynRoute>>,
    statics: Map<Box<str>, Arc<Tenant>>,
    by_schema: Vec<Arc<Tenant>>,
    tenants: usize,
    routes: usize,
    warnings: Vec<String>,
    invalid: Vec<InvalidRow>,
}

/// A route being built: host, `/folder`, primary, redirecting.
type Claim = (Arc<str>, Option<Arc<str>>, bool, bool);

impl Builder {
    /// The host's shared string (one per host, however many routes use it) and slot.
    fn host_slot(&mut self, host: String) -> (Arc<str>, &mut HostSlot) {
        let key = match self.hosts.get_key_value(host.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(host),
        };
        let slot = self.hosts.entry(Arc::clone(&key)).or_default();
        (key, slot)
    }

    fn statics(&mut self, config: &Config) {
        for st in config.static_tenants() {
            let tenant = Arc::new(Tenant {
                schema: st.name().clone(),
                id: None,
                active: true,
                redirect_to: None,
            });
            self.tenants += 1;
            self.statics
                .entry(st.name().as_str().into())
                .or_insert_with(|| Arc::clone(&tenant));
            if let Some(alias) = st.header() {
                self.statics
                    .entry(alias.into())
                    .or_insert_with(|| Arc::clone(&tenant));
            }
            for (domains, fallback) in [(st.domains(), false), (st.fallback_domains(), true)] {
                for domain in domains {
                    self.static_domain(&tenant, domain, fallback);
                }
            }
        }
    }

    /// A static tenant's domain (or fallback domain), unless it cannot be routed or the
    /// host already has one.
    fn static_domain(&mut self, tenant: &Arc<Tenant>, domain: &str, fallback: bool) {
        let name = tenant.schema.as_str();
        let what = if fallback {
            "fallback domain"
        } else {
            "domain"
        };
        let host = match route_host(domain) {
            Ok(h) => h,
            Err(why) => {
                self.warn(format!(
                    "static tenant {name:?}: {what} {domain:?} left out: {why}"
                ));
                return;
            }
        };
        let (_, slot) = self.host_slot(host);
        let place = if fallback {
            &mut slot.fallback
        } else {
            &mut slot.exact
        };
        if let Some(other) = place {
            let other = other.schema.to_string();
            self.warn(format!(
                "static tenant {name:?}: {what} {domain:?} left out: the host is already a {what} of static tenant {other:?}"
            ));
            return;
        }
        *place = Some(Arc::clone(tenant));
        self.routes += 1;
    }

    fn dynamics(&mut self, config: &Config, tenants: &[TenantRecord], domains: &[DomainRecord]) {
        // Deterministic whatever the catalog's order: tenants are taken by id and a route
        // claimed twice goes to the tenant with the smaller id.
        let (mut by_id, left_out) = self.accept_tenants(config, tenants);
        for (host, folder, d) in self.accept_domains(&by_id, &left_out, domains) {
            if let Some((_, list)) = by_id.get_mut(d.tenant_id.as_str()) {
                list.push((host, folder, d));
            }
        }

        let mut ids: Vec<&str> = by_id.keys().copied().collect();
        ids.sort_unstable();
        let mut taken: HashMap<(Arc<str>, Option<Arc<str>>), String> = HashMap::new();
        for id in ids {
            let Some((t, rows)) = by_id.remove(id) else {
                continue;
            };
            self.tenant(t, rows, &mut taken);
        }
        self.by_schema
            .sort_by(|a, b| a.schema.as_str().cmp(b.schema.as_str()));
    }

    /// The tenants that can be routed, by id, with no rows yet; and the ids of those left
    /// out. Taken in id order, so the smaller id keeps a schema claimed twice.
    fn accept_tenants<'a>(
        &mut self,
        config: &Config,
        tenants: &'a [TenantRecord],
    ) -> (ById<'a>, HashSet<&'a str>) {
        let mut tenants: Vec<&TenantRecord> = tenants.iter().collect();
        tenants.sort_by(|a, b| a.id.cmp(&b.id));
        let mut by_id: ById<'a> = HashMap::with_capacity(tenants.len());
        let mut schemas: HashMap<&str, &str> = HashMap::with_capacity(tenants.len());
        let mut left_out: HashSet<&str> = HashSet::new();
        for t in tenants {
            let schema = t.schema.as_str();
            let reason = if let Err(e) = config.check_tenant_name(schema) {
                e.report().to_string()
            } else if by_id.contains_key(t.id.as_str()) {
                "the id is used twice".to_owned()
            } else if let Some(other) = schemas.insert(schema, t.id.as_str()) {
                schemas.insert(schema, other);
                format!("schema {schema:?} already belongs to tenant {other:?}")
            } else {
                by_id.insert(t.id.as_str(), (t, Vec::new()));
                continue;
            };
            left_out.insert(t.id.as_str());
            self.leave_out(InvalidRow::tenant(t.id.as_str(), schema, reason));
        }
        (by_id, left_out)
    }

    /// The domain rows that can be routed, normalised, of the accepted tenants; sorted by
    /// route, a row already in its normal form first, then by tenant id.
    fn accept_domains<'a>(
        &mut self,
        by_id: &ById<'a>,
        left_out: &HashSet<&str>,
        domains: &'a [DomainRecord],
    ) -> Rows<'a> {
        let mut rows: Rows<'_> = Vec::with_capacity(domains.len());
        for d in domains {
            let leave_out = |reason: &str| {
                InvalidRow::domain(
                    d.tenant_id.as_str(),
                    route_label(&d.domain, d.folder.as_deref()),
                    reason,
                )
            };
            if !by_id.contains_key(d.tenant_id.as_str()) {
                let reason = if left_out.contains(d.tenant_id.as_str()) {
                    "its tenant is left out"
                } else {
                    "no tenant has this id"
                };
                self.leave_out(leave_out(reason));
                continue;
            }
            let host = match route_host(&d.domain) {
                Ok(h) => h,
                Err(why) => {
                    self.leave_out(leave_out(why));
                    continue;
                }
            };
            let folder = match d.folder.as_deref() {
                None | Some("") => None,
                Some(f) if is_valid_folder(f) => Some(format!("/{f}")),
                Some(_) => {
                    self.leave_out(leave_out(
                        "the folder must be one URL path segment of letters, digits, '-', '_', '.' or '~'",
                    ));
                    continue;
                }
            };
            rows.push((host, folder, d));
        }
        rows.sort_by(|a, b| {
            (&a.0, &a.1, a.2.domain != a.0, &a.2.tenant_id).cmp(&(
                &b.0,
                &b.1,
                b.2.domain != b.0,
                &b.2.tenant_id,
            ))
        });
        rows
    }

    /// A dynamic tenant: its routes claimed, then indexed.
    fn tenant(
        &mut self,
        t: &TenantRecord,
        rows: Rows<'_>,
        taken: &mut HashMap<(Arc<str>, Option<Arc<str>>), String>,
    ) {
        let claims = self.claim(t, rows, taken);
        let tenant = self.dynamic_tenant(t, &claims);
        for claim in claims {
            self.index_route(&tenant, claim);
        }
    }

    /// The routes of `rows` no smaller tenant id has `taken`; the others are left out.
    fn claim(
        &mut self,
        t: &TenantRecord,
        rows: Rows<'_>,
        taken: &mut HashMap<(Arc<str>, Option<Arc<str>>), String>,
    ) -> Vec<Claim> {
        let mut claims: Vec<Claim> = Vec::with_capacity(rows.len());
        for (host, folder, d) in rows {
            let (host, _) = self.host_slot(host);
            let folder: Option<Arc<str>> = folder.map(Arc::from);
            let route = (Arc::clone(&host), folder.clone());
            if let Some(owner) = taken.get(&route) {
                self.leave_out(InvalidRow::domain(
                    t.id.as_str(),
                    route_label(&d.domain, d.folder.as_deref()),
                    format!(
                        "the route {}{} already belongs to tenant {owner:?}",
                        host,
                        folder.as_deref().unwrap_or("")
                    ),
                ));
                continue;
            }
            taken.insert(route, t.id.clone());
            claims.push((host, folder, d.is_primary, d.redirect_to_primary));
        }
        claims
    }

    /// The shared record of `t` (with where its redirecting routes lead), listed for header
    /// routing by schema name.
    fn dynamic_tenant(&mut self, t: &TenantRecord, claims: &[Claim]) -> Arc<Tenant> {
        // A primary never redirects (it would redirect to itself); the redirect target is
        // kept only when some route redirects.
        let primary = claims.iter().find(|c| c.2);
        let redirects = claims.iter().any(|c| c.3 && !c.2);
        let redirect_to = match (primary, redirects) {
            (Some((host, folder, ..)), true) => Some(Box::new(Place {
                host: Arc::clone(host),
                folder: folder.clone(),
            })),
            _ => None,
        };
        let tenant = Arc::new(Tenant {
            schema: t.schema.clone(),
            id: Some(t.id.as_str().into()),
            active: t.active,
            redirect_to,
        });
        self.tenants += 1;
        if let Some(other) = self.statics.get(t.schema.as_str()) {
            let other = other.schema.to_string();
            self.warn(format!(
                "tenant {:?}: header routing by schema name {:?} left out: it is the header alias of static tenant {other:?}",
                t.id,
                t.schema.as_str()
            ));
        }
        self.by_schema.push(Arc::clone(&tenant));
        tenant
    }

    /// A claimed route of `tenant`, entered in its host's slot or folder map.
    fn index_route(&mut self, tenant: &Arc<Tenant>, claim: Claim) {
        let (host, folder, is_primary, redirect) = claim;
        let redirect = redirect && !is_primary;
        self.routes += 1;
        let Some(slot) = self.hosts.get_mut(&host) else {
            return;
        };
        match folder {
            Some(folder) => {
                if slot.folders == NO_FOLDERS {
                    slot.folders = u32::try_from(self.folders.len()).unwrap_or(NO_FOLDERS);
                    self.folders.push(Map::default());
                }
                if let Some(map) = self.folders.get_mut(slot.folders as usize) {
                    map.insert(
                        folder,
                        DynRoute {
                            tenant: Arc::clone(tenant),
                            redirect,
                        },
                    );
                }
            }
            None => {
                slot.bare = Some(Arc::clone(tenant));
                slot.bare_redirect = redirect;
            }
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// A catalog row left out: listed, and described in the warnings.
    fn leave_out(&mut self, row: InvalidRow) {
        self.warnings.push(row.to_string());
        self.invalid.push(row);
    }

    fn finish(mut self) -> Routes {
        self.hosts.shrink_to_fit();
        for map in &mut self.folders {
            map.shrink_to_fit();
        }
        self.folders.shrink_to_fit();
        self.statics.shrink_to_fit();
        self.by_schema.shrink_to_fit();
        let mut by_id: Vec<u32> = (0..self.by_schema.len())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        let id = |i: &u32| {
            self.by_schema
                .get(*i as usize)
                .and_then(|t| t.id.as_deref())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        by_id.sort_by_cached_key(id);
        Routes {
            hosts: self.hosts,
            folders: self.folders,
            statics: self.statics,
            by_schema: self.by_schema,
            by_id,
            tenants: self.tenants,
            routes: self.routes,
            warnings: self.warnings,
            invalid: self.invalid,
            version: 0,
        }
    }
}
