//! Who signs in where: the database a portal's users, sessions and audit log live in, and the
//! party those users act for. The sign-in pages and the session extractors ([`crate::session`])
//! need only this, so a party's node ([`crate::Portal`]) and the registry's operator view
//! ([`crate::operator`]) share them: users are per database, and a user signs in only where
//! its party is the site's.

use std::sync::Arc;

use lading_store::Store;

use crate::error::PortalError;
use crate::limiter::LoginLimiter;
use crate::PortalSettings;

/// The party of the registry's operators: not a party id (those start with a letter or a
/// digit), so no party's user is ever taken for an operator, nor the reverse.
pub const OPERATOR_PARTY: &str = "@operator";

/// The users' database and party, the sessions' settings and the sign-in counters. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Site(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    party: String,
    settings: PortalSettings,
    limiter: LoginLimiter,
}

impl Site {
    pub fn new(store: Store, party: &str, settings: PortalSettings) -> Self {
        Self(Arc::new(Inner {
            store,
            party: party.to_owned(),
            settings,
            limiter: LoginLimiter::default(),
        }))
    }

    /// The party every user of this site acts for.
    pub fn party(&self) -> &str {
        &self.0.party
    }

    pub fn settings(&self) -> &PortalSettings {
        &self.0.settings
    }

    pub fn limiter(&self) -> &LoginLimiter {
        &self.0.limiter
    }

    pub(crate) fn conn(&self) -> Result<lading_store::PgPooled, PortalError> {
        Ok(self.0.store.conn()?)
    }
}
