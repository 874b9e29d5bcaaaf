//! Text extraction: turns a file's contents into a title and heading-path sections of text
//! blocks (paragraphs, list items, table rows), ready for chunking.
//!
//! Supported formats: Markdown (with an optional `---` front matter holding `title` and
//! `doc_type`), plain text, HTML (text only; scripts, styles, navigation and footers dropped),
//! JSON and TOML (objects become sections, scalar fields become `Key: value` sentences).

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// A file format the ingester understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.md`, `.markdown`
    Markdown,
    /// `.txt`, `.text`
    Text,
    /// `.html`, `.htm`
    Html,
    /// `.json`
    Json,
    /// `.toml`
    Toml,
}

impl Format {
    /// Returns the format for a file name's extension, or `None` if unsupported.
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "html" | "htm" => Some(Format::Html),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// A document reduced to text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedDocument {
    pub title: String,
    /// `doc_type` from the front matter (Markdown) or a top-level `doc_type` key (JSON, TOML).
    pub doc_type: Option<String>,
    pub sections: Vec<Section>,
}

/// The text under one heading path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Section {
    /// Heading path, outermost first; starts with the document title or its level-1 heading.
    pub path: Vec<String>,
    /// Paragraphs, list items and table rows, whitespace-normalised, never empty.
    pub blocks: Vec<String>,
}

impl Section {
    pub fn label(&self) -> String {
        self.path.join(" > ")
    }
}

/// Parses `text` in `format`. `file_stem` names the document when it has no title.
/// Returns a reason (for the skipped-files report) when the file cannot be parsed.
pub(crate) fn parse(format: Format, text: &str, file_stem: &str) -> Result<ParsedDocument, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\0') {
        return Err("binary content (NUL bytes) in a text file".to_string());
    }
    let document = match format {
        Format::Markdown => parse_markdown(text, file_stem),
        Format::Text => parse_text(text, file_stem),
        Format::Html => parse_html(text, file_stem),
        Format::Json => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            parse_structured(&value, file_stem)
        }
        Format::Toml => {
            let value: toml::Value = toml::from_str(text).map_err(|e| format!("invalid TOML: {}", one_line(&e)))?;
            let value = serde_json::to_value(value).map_err(|e| format!("invalid TOML: {e}"))?;
            parse_structured(&value, file_stem)
        }
    };
    if document.sections.is_empty() {
        return Err("no extractable text".to_string());
    }
    Ok(document)
}

fn one_line(error: &impl std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "late-fees_2024" -> "Late fees 2024".
pub(crate) fn humanize(stem: &str) -> String {
    let words = stem.replace(['-', '_', '.'], " ");
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Untitled".to_string(),
    }
}

fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A heading path (level and text of each heading) and the blocks under it.
type SectionBlocks = (Vec<(u8, String)>, Vec<String>);

/// Collects headings and blocks, then resolves section paths once the title is known.
#[derive(Default)]
struct SectionBuilder {
    stack: Vec<(u8, String)>,
    sections: Vec<SectionBlocks>,
    blocks: Vec<String>,
    first_h1: Option<String>,
}

impl SectionBuilder {
    fn heading(&mut self, level: u8, text: &str) {
        let text = normalize_space(text);
        if text.is_empty() {
            return;
        }
        self.flush();
        if level == 1 && self.first_h1.is_none() {
            self.first_h1 = Some(text.clone());
        }
        while self.stack.last().is_some_and(|(top, _)| *top >= level) {
            self.stack.pop();
        }
        self.stack.push((level, text));
    }

    /// Replaces the heading path with an explicit one (structured formats).
    fn path(&mut self, path: &[String]) {
        self.flush();
        self.stack = path.iter().enumerate().map(|(depth, name)| (depth as u8 + 2, name.clone())).collect();
    }

    fn block(&mut self, text: &str) {
        let text = normalize_space(text);
        if !text.is_empty() {
            self.blocks.push(text);
        }
    }

    fn flush(&mut self) {
        if !self.blocks.is_empty() {
            let blocks = std::mem::take(&mut self.blocks);
            self.sections.push((self.stack.clone(), blocks));
        }
    }

    fn finish(mut self, title: Option<String>, doc_type: Option<String>, file_stem: &str) -> ParsedDocument {
        self.flush();
        let title = title.or(self.first_h1).unwrap_or_else(|| humanize(file_stem));
        let sections = self
            .sections
            .into_iter()
            .map(|(stack, blocks)| {
                let mut path = Vec::with_capacity(stack.len() + 1);
                if stack.first().is_none_or(|(level, _)| *level != 1) {
                    path.push(title.clone());
                }
                path.extend(stack.into_iter().map(|(_, name)| name));
                Section { path, blocks }
            })
            .collect();
        ParsedDocument { title, doc_type, sections }
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

static ATX_HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(#{1,6})\s+(.*?)\s*#*\s*$").unwrap());
static LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(.*)$").unwrap());
static THEMATIC_BREAK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$").unwrap());
static IMAGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"!\[([^\]]*)\]\([^)]*\)").unwrap());
static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])").unwrap());
static AUTOLINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<((?:https?|mailto):[^>\s]+)>").unwrap());
static HTML_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"</?[A-Za-z][^>]*>").unwrap());
static EMPHASIS_UNDERSCORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^A-Za-z0-9])_{1,2}([^_]+?)_{1,2}([^A-Za-z0-9]|$)").unwrap());

/// Removes inline Markdown syntax, keeping the visible text.
fn clean_inline(text: &str) -> String {
    let text = IMAGE.replace_all(text, "$1");
    let text = LINK.replace_all(&text, "$1");
    let text = AUTOLINK.replace_all(&text, "$1");
    let text = HTML_TAG.replace_all(&text, " ");
    let text = text.replace("**", "").replace('`', "");
    let text = EMPHASIS_UNDERSCORE.replace_all(&text, "$1$2$3");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|next| next.is_ascii_punctuation()) => {
                out.push(chars.next().unwrap_or('\\'));
            }
            '*' => {}
            _ => out.push(c),
        }
    }
    decode_entities(&out)
}

/// Splits `---` front matter (simple `key: value` lines) from the body.
fn split_front_matter(text: &str) -> (Vec<(String, String)>, &str) {
    let Some(rest) = text.strip_prefix("---").filter(|rest| rest.starts_with('\n') || rest.starts_with("\r\n")) else {
        return (Vec::new(), text);
    };
    let mut fields = Vec::new();
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        let trimmed = line.trim();
        if offset > line.len() && (trimmed == "---" || trimmed == "...") {
            return (fields, &rest[offset..]);
        }
        if let Some((key, value)) = trimmed.split_once(':') {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            fields.push((key.trim().to_ascii_lowercase(), value.to_string()));
        }
    }
    // No closing marker: not front matter after all.
    (Vec::new(), text)
}

fn parse_markdown(text: &str, file_stem: &str) -> ParsedDocument {
    let (front_matter, body) = split_front_matter(text);
    let field = |names: &[&str]| {
        front_matter
            .iter()
            .find(|(key, value)| names.contains(&key.as_str()) && !value.is_empty())
            .map(|(_, v)| v.clone())
    };
    let title = field(&["title"]);
    let doc_type = field(&["doc_type", "type", "category"]);

    let mut builder = SectionBuilder::default();
    let mut paragraph: Vec<String> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut fence: Option<(String, Vec<String>)> = None;

    fn flush_paragraph(builder: &mut SectionBuilder, paragraph: &mut Vec<String>) {
        if !paragraph.is_empty() {
            builder.block(&clean_inline(&paragraph.join(" ")));
            paragraph.clear();
        }
    }
    fn flush_table(builder: &mut SectionBuilder, table: &mut Vec<String>) {
        for row in table_rows(table) {
            builder.block(&row);
        }
        table.clear();
    }

    for line in body.lines() {
        if let Some((marker, code)) = &mut fence {
            if line.trim_start().starts_with(marker.as_str()) {
                builder.block(&code.join("\n"));
                fence = None;
            } else {
                code.push(line.to_string());
            }
            continue;
        }
        let trimmed = line.trim();
        if !table.is_empty() && !trimmed.starts_with('|') {
            flush_table(&mut builder, &mut table);
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            flush_paragraph(&mut builder, &mut paragraph);
            fence = Some((trimmed[..3].to_string(), Vec::new()));
        } else if trimmed.is_empty() {
            flush_paragraph(&mut builder, &mut paragraph);
        } else if let Some(captures) = ATX_HEADING.captures(trimmed) {
            flush_paragraph(&mut builder, &mut paragraph);
            builder.heading(captures[1].len() as u8, &clean_inline(&captures[2]));
        } else if paragraph.len() == 1 && !trimmed.is_empty() && trimmed.chars().all(|c| c == '=') {
            let heading = paragraph.pop().unwrap_or_default();
            builder.heading(1, &clean_inline(&heading));
        } else if paragraph.len() == 1 && trimmed.len() >= 2 && trimmed.chars().all(|c| c == '-') {
            let heading = paragraph.pop().unwrap_or_default();
            builder.heading(2, &clean_inline(&heading));
        } else if THEMATIC_BREAK.is_match(trimmed) {
            flush_paragraph(&mut builder, &mut paragraph);
        } else if trimmed.starts_with('|') {
            flush_paragraph(&mut builder, &mut paragraph);
            table.push(trimmed.to_string());
        } else if let Some(captures) = LIST_ITEM.captures(line) {
            flush_paragraph(&mut builder, &mut paragraph);
            paragraph.push(captures[1].to_string());
        } else {
            let unquoted = trimmed.trim_start_matches('>').trim();
            paragraph.push(unquoted.to_string());
        }
    }
    if let Some((_, code)) = fence {
        builder.block(&code.join("\n"));
    }
    flush_table(&mut builder, &mut table);
    flush_paragraph(&mut builder, &mut paragraph);
    builder.finish(title, doc_type, file_stem)
}

/// Renders a Markdown table's body rows as "Header: cell; Header: cell." sentences.
fn table_rows(lines: &[String]) -> Vec<String> {
    let split = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|');
        let inner = inner.strip_suffix('|').unwrap_or(inner);
        inner.split('|').map(|cell| clean_inline(cell.trim())).collect()
    };
    let is_separator = |line: &str| {
        let cells = split(line);
        !cells.is_empty()
            && cells.iter().all(|c| {
                let c = c.trim();
                !c.is_empty() && c.trim_matches(':').chars().all(|ch| ch == '-')
            })
    };
    let (header, body): (Option<Vec<String>>, &[String]) = match lines {
        [first, second, rest @ ..] if is_separator(second) => (Some(split(first)), rest),
        _ => (None, lines),
    };
    body.iter()
        .filter(|line| !is_separator(line))
        .map(|line| {
            let cells = split(line);
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .filter(|(_, cell)| !cell.trim().is_empty())
                .map(|(idx, cell)| match header.as_ref().and_then(|h| h.get(idx)).filter(|h| !h.trim().is_empty()) {
                    Some(name) => format!("{}: {}", name.trim(), cell.trim()),
                    None => cell.trim().to_string(),
                })
                .collect();
            if parts.is_empty() { String::new() } else { format!("{}.", parts.join("; ")) }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Plain text

fn parse_text(text: &str, file_stem: &str) -> ParsedDocument {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .flat_map(|p| p.split("\r\n\r\n"))
        .map(|p| p.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"))
        .filter(|p| !p.is_empty())
        .collect();
    let looks_like_heading = |p: &str, next: Option<&String>| {
        !p.contains('\n')
            && p.chars().count() <= 80
            && !p.ends_with(['.', ':', ';', ',', '!', '?'])
            && next.is_some()
            && p.chars().next().is_some_and(|c| c.is_alphanumeric())
    };
    let mut builder = SectionBuilder::default();
    let mut title = None;
    for (idx, paragraph) in paragraphs.iter().enumerate() {
        let next = paragraphs.get(idx + 1);
        // A first line followed by its own paragraph may itself hold the heading.
        let (first_line, rest) = match paragraph.split_once('\n') {
            Some((first, rest)) => (first, Some(rest)),
            None => (paragraph.as_str(), None),
        };
        let following = rest.map(str::to_string);
        let next_for_heading = following.as_ref().or(next);
        if looks_like_heading(first_line, next_for_heading) {
            if idx == 0 && title.is_none() {
                title = Some(normalize_space(first_line));
            } else {
                builder.heading(2, first_line);
            }
            if let Some(rest) = rest {
                builder.block(rest);
            }
        } else {
            builder.block(paragraph);
        }
    }
    builder.finish(title, None, file_stem)
}

// ---------------------------------------------------------------------------------------------
// HTML

const SKIPPED_ELEMENTS: &[&str] =
    &["script", "style", "noscript", "template", "svg", "nav", "footer", "iframe", "object"];
const INLINE_ELEMENTS: &[&str] =
    &["a", "b", "i", "em", "strong", "span", "code", "small", "sup", "sub", "u", "abbr", "mark", "s", "kbd", "q"];
const BLOCK_ELEMENTS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "br",
    "section",
    "article",
    "main",
    "header",
    "aside",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "dl",
    "hr",
    "form",
    "figure",
    "figcaption",
    "body",
    "html",
    "tbody",
    "thead",
];

fn parse_html(text: &str, file_stem: &str) -> ParsedDocument {
    let mut builder = SectionBuilder::default();
    let mut title: Option<String> = None;
    let mut current = String::new();
    let mut heading: Option<(u8, String)> = None;
    let mut in_title = false;
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut pos = 0;

    let flush = |builder: &mut SectionBuilder, current: &mut String| {
        builder.block(&decode_entities(current));
        current.clear();
    };

    while pos < bytes.len() {
        if bytes[pos] != b'<' {
            let end = text[pos..].find('<').map_or(text.len(), |offset| pos + offset);
            let chunk = &text[pos..end];
            if in_title {
                title.get_or_insert_with(String::new).push_str(chunk);
            } else if let Some((_, heading_text)) = &mut heading {
                heading_text.push_str(chunk);
            } else {
                current.push_str(chunk);
            }
            pos = end;
            continue;
        }
        if lower[pos..].starts_with("<!--") {
            pos = lower[pos..].find("-->").map_or(bytes.len(), |offset| pos + offset + 3);
            continue;
        }
        let Some(tag_end) = find_tag_end(bytes, pos) else {
            // A lone '<' in text.
            current.push('<');
            pos += 1;
            continue;
        };
        let tag = &lower[pos + 1..tag_end];
        pos = tag_end + 1;
        let closing = tag.starts_with('/');
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>();
        if name.is_empty() {
            continue; // <!DOCTYPE>, <?xml?>
        }
        if !closing && SKIPPED_ELEMENTS.contains(&name.as_str()) && !tag.ends_with('/') {
            pos = skip_element(&lower, pos, &name);
            continue;
        }
        if name == "title" {
            in_title = !closing;
            continue;
        }
        let heading_level = match name.as_bytes() {
            [b'h', digit @ b'1'..=b'6'] => Some(digit - b'0'),
            _ => None,
        };
        if let Some(level) = heading_level {
            if closing {
                if let Some((level, heading_text)) = heading.take() {
                    builder.heading(level, &decode_entities(&heading_text));
                }
            } else {
                flush(&mut builder, &mut current);
                heading = Some((level, String::new()));
            }
            continue;
        }
        if BLOCK_ELEMENTS.contains(&name.as_str()) {
            if heading.is_none() {
                flush(&mut builder, &mut current);
            }
        } else if matches!(name.as_str(), "td" | "th") {
            if !closing && !current.trim().is_empty() {
                current.push_str("; ");
            }
        } else if !INLINE_ELEMENTS.contains(&name.as_str()) {
            current.push(' ');
        }
    }
    if let Some((level, heading_text)) = heading.take() {
        builder.heading(level, &decode_entities(&heading_text));
    }
    flush(&mut builder, &mut current);
    let title = title.map(|t| normalize_space(&decode_entities(&t))).filter(|t| !t.is_empty());
    builder.finish(title, None, file_stem)
}

/// Finds the `>` closing the tag that opens at `start`, honouring quoted attribute values.
fn find_tag_end(bytes: &[u8], start: usize) -> Option<usize> {
    let next = *bytes.get(start + 1)?;
    if !(next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?') {
        return None;
    }
    let mut quote: Option<u8> = None;
    for (offset, &byte) in bytes[start + 1..].iter().enumerate() {
        match quote {
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'>' => return Some(start + 1 + offset),
            None => {}
        }
    }
    None
}

/// Returns the position after the element `name` that started before `pos` (nesting-aware).
fn skip_element(lower: &str, mut pos: usize, name: &str) -> usize {
    let open = format!("<{name}");
    let close = format!("</{name}");
    let mut depth = 1usize;
    while depth > 0 {
        let next_open = lower[pos..].find(&open).map(|o| pos + o);
        let next_close = lower[pos..].find(&close).map(|o| pos + o);
        match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => {
                depth += 1;
                pos = o + open.len();
            }
            (_, Some(c)) => {
                depth -= 1;
                pos = lower[c..].find('>').map_or(lower.len(), |o| c + o + 1);
            }
            (_, None) => return lower.len(),
        }
    }
    pos
}

/// Decodes the common named and all numeric HTML character references.
pub(crate) fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 10);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" | "#39" => '\'',
                "nbsp" => ' ',
                "mdash" => '—',
                "ndash" => '–',
                "hellip" => '…',
                "copy" => '©',
                "reg" => '®',
                "trade" => '™',
                "euro" => '€',
                "pound" => '£',
                "rsquo" | "lsquo" => '\'',
                "ldquo" | "rdquo" => '"',
                _ => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// JSON and TOML

const TITLE_KEYS: &[&str] = &["title", "name", "question", "heading", "id"];

fn parse_structured(value: &serde_json::Value, file_stem: &str) -> ParsedDocument {
    let mut builder = SectionBuilder::default();
    let (title, doc_type) = match value {
        serde_json::Value::Object(map) => (
            map.get("title").and_then(|v| v.as_str()).map(str::to_string),
            map.get("doc_type").and_then(|v| v.as_str()).map(str::to_string),
        ),
        _ => (None, None),
    };
    walk(value, &mut Vec::new(), &mut builder, true);
    builder.finish(title, doc_type, file_stem)
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        serde_json::Value::Null => None,
        serde_json::Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let parts: Vec<String> = items.iter().filter_map(scalar_text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    }
}

fn walk(value: &serde_json::Value, path: &mut Vec<String>, builder: &mut SectionBuilder, top: bool) {
    match value {
        serde_json::Value::Object(map) => {
            builder.path(path);
            let sentences: Vec<String> = map
                .iter()
                .filter(|(key, _)| !(top && (key.as_str() == "title" || key.as_str() == "doc_type")))
                .filter_map(|(key, v)| scalar_text(v).map(|text| (key, text)))
                .map(|(key, text)| {
                    let text = text.trim().to_string();
                    if text.ends_with(['.', '?', '!']) {
                        format!("{}: {text}", humanize(key))
                    } else {
                        format!("{}: {text}.", humanize(key))
                    }
                })
                .collect();
            if !sentences.is_empty() {
                builder.block(&sentences.join(" "));
            }
            for (key, child) in map {
                if scalar_text(child).is_none() && (child.is_object() || child.is_array()) {
                    path.push(humanize(key));
                    walk(child, path, builder, false);
                    path.pop();
                    builder.path(path);
                }
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(text) = scalar_text(value) {
                builder.block(&text);
                return;
            }
            for (idx, item) in items.iter().enumerate() {
                let label = item
                    .as_object()
                    .and_then(|map| TITLE_KEYS.iter().find_map(|key| map.get(*key).and_then(scalar_text)))
                    .unwrap_or_else(|| format!("{} {}", path.last().map_or("Item", |s| s.as_str()), idx + 1));
                path.push(label);
                walk(item, path, builder, false);
                path.pop();
                builder.path(path);
            }
        }
        other => {
            if let Some(text) = scalar_text(other) {
                builder.path(path);
                builder.block(&text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(document: &ParsedDocument) -> Vec<(String, Vec<String>)> {
        document.sections.iter().map(|s| (s.label(), s.blocks.clone())).collect()
    }

    #[test]
    fn markdown_heading_paths_and_front_matter() {
        let text = "---\ntitle: Billing guide\ndoc_type: billing\n---\n# Billing\nIntro text.\n\n## Late fees\nA **$10** fee.\n\n### Waivers\n- first item\n- second [link](http://x)\n\n## Due dates\nThe 19th.\n";
        let document = parse(Format::Markdown, text, "billing").unwrap();
        assert_eq!(document.title, "Billing guide");
        assert_eq!(document.doc_type.as_deref(), Some("billing"));
        assert_eq!(
            sections(&document),
            vec![
                ("Billing".to_string(), vec!["Intro text.".to_string()]),
                ("Billing > Late fees".to_string(), vec!["A $10 fee.".to_string()]),
                (
                    "Billing > Late fees > Waivers".to_string(),
                    vec!["first item".to_string(), "second link".to_string()]
                ),
                ("Billing > Due dates".to_string(), vec!["The 19th.".to_string()]),
            ]
        );
    }

    #[test]
    fn markdown_without_h1_uses_the_file_name() {
        let document = parse(Format::Markdown, "Some text\n\n## Part\nMore", "late-fees").unwrap();
        assert_eq!(document.title, "Late fees");
        assert_eq!(sections(&document)[1].0, "Late fees > Part");
    }

    #[test]
    fn markdown_tables_become_sentences() {
        let text = "# Plans\n| Plan | Price |\n|---|---:|\n| Basic | $40 |\n| Premium | $65 |\n";
        let document = parse(Format::Markdown, text, "x").unwrap();
        assert_eq!(sections(&document)[0].1, vec!["Plan: Basic; Price: $40.", "Plan: Premium; Price: $65."]);
    }

    #[test]
    fn markdown_code_fences_do_not_make_headings() {
        let text = "# Doc\n```\n# not a heading\n```\n";
        let document = parse(Format::Markdown, text, "x").unwrap();
        assert_eq!(sections(&document), vec![("Doc".to_string(), vec!["# not a heading".to_string()])]);
    }

    #[test]
    fn html_keeps_text_only() {
        let html = r#"<html><head><title>Wi-Fi &amp; calls</title><style>p { color: red }</style>
            <script>var x = "<h1>no</h1>";</script></head><body><nav>Home | Plans</nav>
            <h1>Wi-Fi calling</h1><p>Calls over <b>Wi-Fi</b> are free &mdash; always.</p><!-- hidden -->
            <h2>Setup</h2><ul><li>Android: Settings &gt; Calls</li><li>iPhone&#39;s settings</li></ul>
            <table><tr><td>a</td><td>b</td></tr></table><footer>(c) us</footer></body></html>"#;
        let document = parse(Format::Html, html, "x").unwrap();
        assert_eq!(document.title, "Wi-Fi & calls");
        assert_eq!(
            sections(&document),
            vec![
                ("Wi-Fi calling".to_string(), vec!["Calls over Wi-Fi are free — always.".to_string()]),
                (
                    "Wi-Fi calling > Setup".to_string(),
                    vec!["Android: Settings > Calls".to_string(), "iPhone's settings".to_string(), "a; b".to_string()]
                ),
            ]
        );
        let all: String = document.sections.iter().flat_map(|s| s.blocks.clone()).collect();
        for hidden in ["color", "var x", "Home", "hidden", "(c) us"] {
            assert!(!all.contains(hidden), "{hidden} leaked into {all}");
        }
    }

    #[test]
    fn html_survives_broken_markup() {
        for html in ["<p>a < b and <unclosed", "<script>never closed", "<<<>>>", "</p></p>text", "<h1>only heading"] {
            let _ = parse(Format::Html, html, "x");
        }
        let document = parse(Format::Html, "<p>a < b and c</p>", "x").unwrap();
        assert_eq!(document.sections[0].blocks, vec!["a < b and c"]);
    }

    #[test]
    fn json_objects_become_sections() {
        let json = r#"{"title": "Contact", "hours": "8 to 10", "channels": [{"name": "Phone", "number": "611"}, {"name": "Chat", "open": true}]}"#;
        let document = parse(Format::Json, json, "contact").unwrap();
        assert_eq!(document.title, "Contact");
        assert_eq!(
            sections(&document),
            vec![
                ("Contact".to_string(), vec!["Hours: 8 to 10.".to_string()]),
                ("Contact > Channels > Phone".to_string(), vec!["Name: Phone. Number: 611.".to_string()]),
                ("Contact > Channels > Chat".to_string(), vec!["Name: Chat. Open: yes.".to_string()]),
            ]
        );
    }

    #[test]
    fn toml_tables_become_sections() {
        let text = "title = \"Fees\"\n[late_fee]\namount = \"$10\"\n";
        let document = parse(Format::Toml, text, "fees").unwrap();
        assert_eq!(sections(&document), vec![("Fees > Late fee".to_string(), vec!["Amount: $10.".to_string()])]);
    }

    #[test]
    fn plain_text_detects_title_and_headings() {
        let text = "Network outages\n\nChecking\nLook at the status page.\n\nCredits\nOne thirtieth per day.\n";
        let document = parse(Format::Text, text, "x").unwrap();
        assert_eq!(document.title, "Network outages");
        assert_eq!(
            sections(&document),
            vec![
                ("Network outages > Checking".to_string(), vec!["Look at the status page.".to_string()]),
                ("Network outages > Credits".to_string(), vec!["One thirtieth per day.".to_string()]),
            ]
        );
    }

    #[test]
    fn bad_files_give_reasons() {
        assert!(parse(Format::Json, "{not json", "x").unwrap_err().starts_with("invalid JSON"));
        assert!(parse(Format::Toml, "= = =", "x").unwrap_err().starts_with("invalid TOML"));
        assert_eq!(parse(Format::Markdown, "   \n\n", "x").unwrap_err(), "no extractable text");
        assert!(parse(Format::Text, "a\0b", "x").unwrap_err().contains("binary"));
        assert_eq!(parse(Format::Json, "{}", "x").unwrap_err(), "no extractable text");
    }

    #[test]
    fn entities_decode() {
        assert_eq!(decode_entities("a &amp; b &#8364; &#x41; &bogus; &"), "a & b € A &bogus; &");
    }
}
