//! Files that people open in a spreadsheet (the coupon export, the bulk lookup's CSV).

/// A cell a spreadsheet will not run as a formula (OWASP "CSV injection"): text starting
/// with `=`, `+`, `-`, `@` or a control character gets a leading apostrophe.
pub(crate) fn inert(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell,
    }
}
