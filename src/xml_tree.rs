//! A small element tree over quick-xml's event reader, for the XML files rinnovo reads:
//! bank statements and the SdI's notifications. Statements are read by path
//! (`NtryDtls/TxDtls/RmtInf/Ustrd`) and several versions put the same datum in different
//! places, which a tree answers simply. A whole statement file is not small enough to
//! hold (a 50 MB camt.053 made a tree of over a gigabyte): `parse_stream` builds the tree
//! of one entry at a time and keeps only the skeleton around them.
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
    /// The numbers of the children [`parse_stream`] handed on instead of keeping.
    pub pruned: Vec<usize>,
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
        let never = |_: &Element, _: &str| false;
        parse_stream(text.as_bytes(), never, |_, _| Ok::<(), XmlError>(())).map_err(|stop| {
            match stop {
                Stop::Xml(error) | Stop::Sink(error) => error,
            }
        })
    }
}

/// Why [`parse_stream`] stopped: the XML, or the consumer of the pruned elements.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    Xml(XmlError),
    Sink(E),
}

/// Parses a document read from `input` into its root element, as
/// [`Element::parse_document`], except that an element for which `prune(parent, name)`
/// holds is not kept in the tree: once complete, it is handed to `pruned` with its number
/// (0, 1, ... in document order) and dropped, and the number is noted in its parent's
/// `pruned`. A statement's entries are read that way, one at a time, so that a file of
/// any size is read in the memory of one entry and the statements' skeleton.
pub(crate) fn parse_stream<R: std::io::BufRead, E>(
    input: R,
    prune: impl Fn(&Element, &str) -> bool,
    mut pruned: impl FnMut(Element, usize) -> Result<(), E>,
) -> Result<Element, Stop<E>> {
    let mut reader = NsReader::from_reader(LineCounter::new(input));
    let xml_error = |reader: &mut NsReader<LineCounter<R>>, offset: u64, message: String| {
        let line = reader.get_mut().line(offset);
        Stop::Xml(XmlError {
            location: format!("line {line}"),
            message,
        })
    };
    let mut buffer = Vec::new();
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // The index in `open` of the element being pruned, if one is open.
    let mut pruning: Option<usize> = None;
    let mut pruned_count = 0;
    loop {
        buffer.clear();
        let offset = reader.buffer_position();
        let (namespace, event) = match reader.read_resolved_event_into(&mut buffer) {
            Ok((namespace, event)) => (namespace_of(namespace), event.into_owned()),
            Err(error) => {
                let position = reader.error_position();
                return Err(xml_error(
                    &mut reader,
                    position,
                    format!("not well-formed XML: {error}"),
                ));
            }
        };
        let line = reader.get_mut().line(offset);
        let at = |message: &str| XmlError {
            location: format!("line {line}"),
            message: message.to_owned(),
        };
        match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(Stop::Xml(at("elements nested too deeply")));
                }
                if root.is_some() && open.is_empty() {
                    return Err(Stop::Xml(at("a second root element")));
                }
                let element = Element::open(&start, namespace, line).map_err(|m| at(&m));
                let element = element.map_err(Stop::Xml)?;
                if pruning.is_none()
                    && open
                        .last()
                        .is_some_and(|parent| prune(parent, &element.name))
                {
                    pruning = Some(open.len());
                }
                open.push(element);
            }
            Event::Empty(start) => {
                let element = Element::open(&start, namespace, line).map_err(|m| at(&m));
                let element = element.map_err(Stop::Xml)?;
                match open.last_mut() {
                    Some(parent) if pruning.is_none() && prune(parent, &element.name) => {
                        parent.pruned.push(pruned_count);
                        pruned(element, pruned_count).map_err(Stop::Sink)?;
                        pruned_count += 1;
                    }
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(Stop::Xml(at("a second root element"))),
                }
            }
            Event::End(_) => {
                let Some(element) = open.pop() else {
                    return Err(Stop::Xml(at("a closing tag with no opening")));
                };
                let depth = open.len();
                match open.last_mut() {
                    Some(parent) if pruning == Some(depth) => {
                        pruning = None;
                        parent.pruned.push(pruned_count);
                        pruned(element, pruned_count).map_err(Stop::Sink)?;
                        pruned_count += 1;
                    }
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => match open.last_mut() {
                Some(element) => element.text.push_str(&text.xml10_content()),
                None if text.trim().is_empty() => {}
                None => return Err(Stop::Xml(at("text outside the root element"))),
            },
            Event::CData(data) => match open.last_mut() {
                Some(element) => element.text.push_str(&data.xml10_content()),
                None => return Err(Stop::Xml(at("text outside the root element"))),
            },
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match resolve_predefined_entity(&reference) {
                        Some(entity) => entity.to_owned(),
                        None => {
                            let message = format!("unknown entity &{};", &*reference);
                            return Err(Stop::Xml(at(&message)));
                        }
                    },
                    Err(error) => return Err(Stop::Xml(at(&error.to_string()))),
                };
                match open.last_mut() {
                    Some(element) => element.text.push_str(&resolved),
                    None => return Err(Stop::Xml(at("text outside the root element"))),
                }
            }
            Event::DocType(_) => {
                return Err(Stop::Xml(at(
                    "a DOCTYPE declaration is not expected in a statement",
                )))
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if let Some(unclosed) = open.last() {
        let message = format!(
            "the file ends inside <{}> opened at line {}: it is truncated",
            unclosed.name, unclosed.line
        );
        let end = reader.buffer_position();
        return Err(xml_error(&mut reader, end, message));
    }
    root.ok_or_else(|| {
        Stop::Xml(XmlError {
            location: "line 1".into(),
            message: "no XML element in the file".into(),
        })
    })
}

impl Element {
    /// A new element from its start tag; the error is the message.
    fn open(
        start: &BytesStart<'_>,
        namespace: Option<String>,
        line: usize,
    ) -> Result<Element, String> {
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|error| format!("bad attribute: {error}"))?;
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|error| format!("bad attribute: {error}"))?;
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
            pruned: Vec::new(),
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

/// Byte offsets to line numbers, for messages people can follow in an editor, as the
/// input is read: it notes the newlines of what the parser consumed and forgets those
/// before the offsets asked for, which only grow (event starts, then an error's place).
struct LineCounter<R> {
    inner: R,
    consumed: u64,
    newlines: std::collections::VecDeque<u64>,
    lines_before: usize,
}

impl<R: std::io::BufRead> LineCounter<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            consumed: 0,
            newlines: std::collections::VecDeque::new(),
            lines_before: 0,
        }
    }

    /// The 1-based line of a byte offset at or after the last one asked for.
    fn line(&mut self, offset: u64) -> usize {
        while self.newlines.front().is_some_and(|&at| at < offset) {
            self.newlines.pop_front();
            self.lines_before += 1;
        }
        1 + self.lines_before
    }
}

impl<R: std::io::BufRead> std::io::Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        // The bytes consumed are the front of the buffer filled last: no reading here.
        if let Ok(buffer) = self.inner.fill_buf() {
            let consumed = self.consumed;
            self.newlines.extend(
                buffer[..amount.min(buffer.len())]
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == b'\n')
                    .map(|(i, _)| consumed + i as u64),
            );
        }
        self.consumed += amount as u64;
        self.inner.consume(amount);
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
