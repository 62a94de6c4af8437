//! Finding a piece of text in a column, the same on both backends: both sides lowered
//! (SQLite's LIKE ignores ASCII case, PostgreSQL's does not) and the searched text's own
//! wildcards taken literally.

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `text` as a LIKE pattern (escape character a backslash) that finds it anywhere, its own
/// `%`, `_` and backslash taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
