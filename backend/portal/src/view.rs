//! What every page's template shares: the layout (title, who is signed in, the logout form's
//! CSRF token, the assets' URLs) and the formatting of times, states and parties.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lading_store::node_documents::SearchWord;

use crate::session::SignedIn;

/// The frame of every page (`templates/base.html`).
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// The signed-in user, for the header; none on the sign-in and error pages.
    pub user: Option<UserBar>,
    /// Which section of the navigation is current.
    pub section: &'static str,
    pub css: &'static str,
    pub htmx: &'static str,
}

/// The header's view of the signed-in user.
#[derive(Debug, Clone)]
pub struct UserBar {
    pub username: String,
    pub role: &'static str,
    pub party: String,
    pub party_name: String,
    /// For the logout form.
    pub csrf: String,
    pub is_admin: bool,
}

impl Layout {
    /// A page without a signed-in user.
    pub fn bare(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            user: None,
            section: "",
            css: crate::assets::url("portal.css"),
            htmx: crate::assets::url("htmx.min.js"),
        }
    }

    /// A page of `user`'s, in `section`.
    pub fn signed_in(title: &str, section: &'static str, user: &SignedIn, names: &Names) -> Self {
        Self {
            user: Some(UserBar {
                username: user.username.clone(),
                role: user.role.as_str(),
                party: user.party.clone(),
                party_name: names.name(&user.party).to_owned(),
                csrf: user.csrf.clone(),
                is_admin: user.role.may(crate::auth::Permission::ManageUsers),
            }),
            section,
            ..Self::bare(title)
        }
    }
}

/// The consortium's parties by id, as the node's membership names them.
#[derive(Debug, Clone, Default)]
pub struct Names(HashMap<String, String>);

impl Names {
    pub fn of(node: &lading_replica::node::Node) -> Self {
        let follower = node.follower();
        Self(
            follower
                .membership()
                .members()
                .into_iter()
                .map(|m| (m.party.id.to_string(), m.party.name.as_str().to_owned()))
                .collect(),
        )
    }

    /// The ids of the parties whose name holds `word` (as the list matches words): a search
    /// for a name finds the documents that carry the party's id.
    pub fn parties_named(&self, word: &SearchWord) -> Vec<String> {
        let mut ids: Vec<String> = self
            .0
            .iter()
            .filter(|(_, name)| word.found_in(name))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The party's name, or its id when the membership does not know it.
    pub fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.0.get(id).map_or(id, String::as_str)
    }
}

/// A time as the pages show it: `2026-11-02 10:15 UTC`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A moment to the second (when the node last asked the registry something).
pub fn time_seconds(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A status code in words.
pub fn state_label(code: &str) -> &'static str {
    match code {
        "ACTIVE" => "Active",
        "SURRENDER_FOR_DELIVERY_REQUESTED" => "Surrender for delivery requested",
        "SURRENDER_FOR_AMENDMENT_REQUESTED" => "Surrender for amendment requested",
        "SURRENDERED_FOR_DELIVERY" => "Surrendered for delivery",
        "SURRENDERED_FOR_AMENDMENT" => "Surrendered for amendment",
        "VOID" => "Void",
        _ => "Unknown",
    }
}

/// The states a document can be in, in the order the pages list them.
pub const STATES: [&str; 6] = [
    "ACTIVE",
    "SURRENDER_FOR_DELIVERY_REQUESTED",
    "SURRENDER_FOR_AMENDMENT_REQUESTED",
    "SURRENDERED_FOR_DELIVERY",
    "SURRENDERED_FOR_AMENDMENT",
    "VOID",
];

/// A CSS class for a state's badge.
pub fn state_class(code: &str) -> &'static str {
    match code {
        "ACTIVE" => "state-active",
        "SURRENDER_FOR_DELIVERY_REQUESTED" | "SURRENDER_FOR_AMENDMENT_REQUESTED" => "state-pending",
        _ => "state-closed",
    }
}

/// A party role (`node_documents.party_roles`) in words.
pub fn role_label(role: &str) -> &'static str {
    match role {
        "carrier" => "Carrier",
        "shipper" => "Shipper",
        "consignee" => "Consignee",
        "notify" => "Notify party",
        "endorsee" => "Endorsee",
        "holder" => "Holder",
        "customs" => "Customs",
        "participant" => "Earlier party",
        _ => "Other",
    }
}

/// An action code in words.
pub fn action_label(code: &str) -> &'static str {
    match code {
        "ISSUE" => "Issued",
        "TRANSFER" => "Transferred",
        "ENDORSE" => "Endorsed",
        "ENDORSE_TO_ORDER" => "Endorsed to order",
        "BLANK_ENDORSE" => "Endorsed in blank",
        "SIGN" => "Signed",
        "SURRENDER_FOR_DELIVERY" => "Surrendered for delivery",
        "SURRENDER_FOR_AMENDMENT" => "Surrendered for amendment",
        "SACC" => "Surrender accepted",
        "SREJ" => "Surrender rejected",
        "VOID" => "Voided",
        _ => "Recorded",
    }
}

/// Percent-encodes a query parameter's value.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in: a path of this portal only (never another site), else `/`.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Shortens a hex hash for display: its first 12 characters.
pub fn short_hash(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/bills?q=x")), "/bills?q=x");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(url_encode("/bills?q=a b&x"), "%2Fbills%3Fq%3Da%20b%26x");
    }
}
