//! A small element tree over quick-xml's event reader, for the XML files rinnovo reads:
//! bank statements and the SdI's notifications. Statements are read by path
//! (`NtryDtls/TxDtls/RmtInf/Ustrd`) and several versions put the same datum in different
//! places, which a tree answers simply; a day's statement is small enough to hold.
//!
//! Elements keep their local name (prefixes differ from bank to bank), their namespace
//! (the version lives there), their text and the line where they start, for messages.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// Statements nest about fifteen levels, CBI envelopes a few more. The limit keeps a
/// hostile file from exhausting memory or the stack (the tree is dropped recursively).
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
pub(crate) struct Element {
    pub name: String,
    pub namespace: Option<String>,
    attributes: Vec<(String, String)>,
    text: String,
    pub line: usize,
    pub children: Vec<Element>,
}

/// A file that is not well-formed XML (or that rinnovo refuses to read as such), and
/// where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// `line 17`.
    pub location: String,
    pub message: String,
}

impl Element {
    /// Parses a whole document into its root element; refuses what is not well-formed,
    /// a document type declaration (a statement has none, and its entities are a known
    /// way to blow up parsers) and entities other than XML's five.
    pub fn parse_document(text: &str) -> Result<Element, XmlError> {
        let lines = LineIndex::new(text);
        let xml_error = |offset: u64, message: String| {
            let line = lines.line(usize::try_from(offset).unwrap_or(usize::MAX));
            XmlError {
                location: format!("line {line}"),
                message,
            }
        };
        let mut reader = NsReader::from_str(text);
        let mut open: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let offset = reader.buffer_position();
            let (namespace, event) = match reader.read_resolved_event() {
                Ok((namespace, event)) => (namespace_of(namespace), event),
                Err(error) => {
                    return Err(xml_error(
                        reader.error_position(),
                        format!("not well-formed XML: {error}"),
                    ))
                }
            };
            let line = lines.line(usize::try_from(offset).unwrap_or(usize::MAX));
            match event {
                Event::Start(start) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(xml_error(offset, "elements nested too deeply".into()));
                    }
                    if root.is_some() && open.is_empty() {
                        return Err(xml_error(offset, "a second root element".into()));
                    }
                    open.push(Element::open(&start, namespace, line, &xml_error, offset)?);
                }
                Event::Empty(start) => {
                    let element = Element::open(&start, namespace, line, &xml_error, offset)?;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None if root.is_none() => root = Some(element),
                        None => return Err(xml_error(offset, "a second root element".into())),
                    }
                }
                Event::End(_) => {
                    let Some(element) = open.pop() else {
                        return Err(xml_error(offset, "a closing tag with no opening".into()));
                    };
                    match open.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::Text(text) => match open.last_mut() {
                    Some(element) => element.text.push_str(&text.xml10_content()),
                    None if text.trim().is_empty() => {}
                    None => return Err(xml_error(offset, "text outside the root element".into())),
                },
                Event::CData(data) => match open.last_mut() {
                    Some(element) => element.text.push_str(&data.xml10_content()),
                    None => return Err(xml_error(offset, "text outside the root element".into())),
                },
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => match resolve_predefined_entity(&reference) {
                            Some(entity) => entity.to_owned(),
                            None => {
                                return Err(xml_error(
                                    offset,
                                    format!("unknown entity &{};", &*reference),
                                ))
                            }
                        },
                        Err(error) => return Err(xml_error(offset, error.to_string())),
                    };
                    match open.last_mut() {
                        Some(element) => element.text.push_str(&resolved),
                        None => {
                            return Err(xml_error(offset, "text outside the root element".into()))
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(xml_error(
                        offset,
                        "a DOCTYPE declaration is not expected in a statement".into(),
                    ))
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            }
        }
        if let Some(unclosed) = open.last() {
            return Err(xml_error(
                text.len() as u64,
                format!(
                    "the file ends inside <{}> opened at line {}: it is truncated",
                    unclosed.name, unclosed.line
                ),
            ));
        }
        root.ok_or_else(|| xml_error(0, "no XML element in the file".into()))
    }

    fn open(
        start: &BytesStart<'_>,
        namespace: Option<String>,
        line: usize,
        xml_error: &impl Fn(u64, String) -> XmlError,
        offset: u64,
    ) -> Result<Element, XmlError> {
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute =
                attribute.map_err(|error| xml_error(offset, format!("bad attribute: {error}")))?;
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|error| xml_error(offset, format!("bad attribute: {error}")))?;
            let name = attribute.key.local_name();
            attributes.push((name.as_ref().to_owned(), value.into_owned()));
        }
        Ok(Element {
            name: start.local_name().as_ref().to_owned(),
            namespace,
            attributes,
            text: String::new(),
            line,
            children: Vec::new(),
        })
    }

    pub fn children_named<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The first element at the end of `path` (local names separated by `/`), trying every
    /// branch: `RmtInf/Strd/CdtrRefInf/Ref` finds the reference in the second `Strd`
    /// when the first has none.
    pub fn find(&self, path: &str) -> Option<&Element> {
        let (first, rest) = match path.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        self.children
            .iter()
            .filter(|child| child.name == first)
            .find_map(|child| match rest {
                Some(rest) => child.find(rest),
                None => Some(child),
            })
    }

    /// Every element at the end of `path`, in document order.
    pub fn find_all<'a>(&'a self, path: &str) -> Vec<&'a Element> {
        let mut found = vec![self];
        for name in path.split('/') {
            found = found
                .into_iter()
                .flat_map(|element| element.children.iter().filter(move |c| c.name == name))
                .collect();
        }
        found
    }

    /// The text of the element at `path`, trimmed; `None` when absent or blank.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.find(path).and_then(Element::text)
    }

    /// The element's own text, trimmed; `None` when blank.
    pub fn text(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|text| !text.is_empty())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn namespace_of(resolved: ResolveResult<'_>) -> Option<String> {
    match resolved {
        ResolveResult::Bound(namespace) => Some(namespace.0.to_owned()),
        ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
    }
}

/// Byte offsets to line numbers, for messages people can follow in an editor.
struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        Self {
            newlines: text
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        1 + self.newlines.partition_point(|&newline| newline < offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_namespaces_text_and_lines() {
        let root = Element::parse_document(
            "<?xml version=\"1.0\"?>\n<a:Doc xmlns:a=\"urn:x\">\n  <a:Nm>Rossi &amp; Figli &#x20AC;</a:Nm>\n  <Amt Ccy=\"EUR\">1.00</Amt><E/>\n</a:Doc>",
        )
        .unwrap();
        assert_eq!(root.name, "Doc");
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.text_at("Nm"), Some("Rossi & Figli €"));
        assert_eq!(root.find("Nm").unwrap().line, 3);
        assert_eq!(root.find("Amt").unwrap().attribute("Ccy"), Some("EUR"));
        assert!(root.child("E").is_some());
    }

    #[test]
    fn refuses_what_is_not_a_document() {
        let line = |text: &str| Element::parse_document(text).unwrap_err().location;
        assert_eq!(line("<a>\n<b>\n</a>"), "line 3");
        assert_eq!(line("<a>\n<b>\n"), "line 3", "truncated");
        assert_eq!(line("<a/><b/>"), "line 1");
        assert_eq!(line("<a>&custom;</a>"), "line 1");
        assert_eq!(line("<!DOCTYPE a [<!ENTITY x \"y\">]><a/>"), "line 1");
        assert_eq!(line(""), "line 1");
        let deep = "<a>".repeat(1000);
        assert_eq!(line(&deep), "line 1");
    }
}
