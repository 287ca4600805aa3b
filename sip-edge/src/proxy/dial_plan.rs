//! Number -> destination.

use std::collections::HashMap;

/// Where a dialled number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// A VoiceXML application on the media server (RFC 5552 Request-URI).
    VxmlApp {
        /// The application's document URL.
        url: String,
    },
}

/// The dial plan: Request-URI user part -> [`Route`].
#[derive(Debug, Clone, Default)]
pub struct DialPlan {
    routes: HashMap<String, Route>,
}

impl DialPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a number.
    pub fn insert(&mut self, number: impl Into<String>, route: Route) {
        self.routes.insert(number.into(), route);
    }

    /// Looks a number up.
    pub fn lookup(&self, number: &str) -> Option<&Route> {
        self.routes.get(number)
    }
}
