//! Query-string values that break a rule: the same problem JSON as a body field, naming
//! the parameter.

use crate::validation::Rule;

#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub(super) struct QueryRule(pub &'static str, pub String);

impl Rule for QueryRule {
    fn rule(&self) -> &'static str {
        self.0
    }
}

/// `parsed`, or the rule `one_of` listing the values `field` takes.
pub(super) fn one_of<T>(field: &str, parsed: Option<T>, names: &[&str]) -> Result<T, QueryRule> {
    parsed.ok_or_else(|| {
        QueryRule(
            "one_of",
            format!("{field} must be one of {}", names.join(", ")),
        )
    })
}
