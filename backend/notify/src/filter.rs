//! What a subscription asks to be told of.

use serde::{Deserialize, Serialize};

/// A subscription's filter: every list that is not empty must match (an empty list matches
/// everything). `documents` are references; `actions` are transition actions (`ISSUE`,
/// `TRANSFER`, …); `eventCodes` are shipment event codes (`DEPA`, `HOLD`, …). An entry that
/// is a transition is told when `eventCodes` alone is set only if `actions` is empty too, and
/// likewise for events: setting `actions` alone subscribes to transitions, `eventCodes` alone
/// to shipment events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub documents: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub event_codes: Vec<String>,
}

/// What the filter looks at in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<'a> {
    Transition {
        document: &'a str,
        action: &'a str,
    },
    Event {
        document: Option<&'a str>,
        code: &'a str,
    },
}

impl Filter {
    /// Whether the filter takes an entry that shows `seen`.
    pub fn takes(&self, seen: &Seen<'_>) -> bool {
        let document_ok = |d: Option<&str>| {
            self.documents.is_empty() || d.is_some_and(|d| self.documents.iter().any(|x| x == d))
        };
        match seen {
            Seen::Transition { document, action } => {
                document_ok(Some(document))
                    && (self.actions.iter().any(|a| a == action)
                        || (self.actions.is_empty() && self.event_codes.is_empty()))
            }
            Seen::Event { document, code } => {
                document_ok(*document)
                    && (self.event_codes.iter().any(|c| c == code)
                        || (self.event_codes.is_empty() && self.actions.is_empty()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_takes_what_it_names_and_an_empty_one_everything() {
        let issue = Seen::Transition {
            document: "BL1",
            action: "ISSUE",
        };
        let hold = Seen::Event {
            document: Some("BL1"),
            code: "HOLD",
        };
        let other = Seen::Transition {
            document: "BL2",
            action: "ISSUE",
        };
        let all = Filter::default();
        assert!(all.takes(&issue) && all.takes(&hold) && all.takes(&other));
        let bl1 = Filter {
            documents: vec!["BL1".into()],
            ..Filter::default()
        };
        assert!(bl1.takes(&issue) && bl1.takes(&hold) && !bl1.takes(&other));
        let issues = Filter {
            actions: vec!["ISSUE".into()],
            ..Filter::default()
        };
        assert!(issues.takes(&issue) && !issues.takes(&hold));
        let holds = Filter {
            event_codes: vec!["HOLD".into()],
            ..Filter::default()
        };
        assert!(!holds.takes(&issue) && holds.takes(&hold));
        let container_only = Seen::Event {
            document: None,
            code: "HOLD",
        };
        assert!(holds.takes(&container_only) && !bl1.takes(&container_only));
    }
}
