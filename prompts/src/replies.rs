//! Reply templates: named texts with `{fact}` placeholders, filled by the engine from the
//! account data and the conversation (never from model output).

use std::collections::BTreeMap;

use crate::{Error, Result};

/// Every reply template of a pack, by name.
#[derive(Debug, Clone)]
pub struct Replies {
    /// The file the templates were read from, for error messages.
    pub source: String,
    templates: BTreeMap<String, String>,
}

impl Replies {
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let templates: BTreeMap<String, String> = serde_yaml::from_str(text)
            .map_err(|error| Error::Parse { file: name.to_string(), why: error.to_string() })?;
        for (key, template) in &templates {
            placeholders(template)
                .map_err(|why| Error::Invalid { file: name.to_string(), why: format!("{key}: {why}") })?;
        }
        Ok(Self { source: name.to_string(), templates })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.templates.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// The template's text, unfilled.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.templates.get(name).map(String::as_str)
    }

    /// The placeholders a template uses.
    pub fn placeholders_of(&self, name: &str) -> Vec<String> {
        self.templates.get(name).and_then(|template| placeholders(template).ok()).unwrap_or_default()
    }

    /// Fills a template; `facts` answers each placeholder. Fails on an unknown template or a
    /// placeholder without a value, naming it.
    pub fn render(&self, name: &str, facts: &dyn Fn(&str) -> Option<String>) -> Result<String, RenderError> {
        let template = self.templates.get(name).ok_or_else(|| RenderError::UnknownTemplate(name.to_string()))?;
        fill(template, facts).map_err(|fact| RenderError::MissingFact { template: name.to_string(), fact })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown reply template {0}")]
    UnknownTemplate(String),
    #[error("reply template {template} needs the fact {fact}, which is not known here")]
    MissingFact { template: String, fact: String },
}

/// Fills `{name}` placeholders of any text; returns the first name without a value.
pub fn fill(template: &str, facts: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| "an unclosed {".to_string())?;
        let name = &after[..end];
        out.push_str(&facts(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| "an unclosed {".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad placeholder {{{name}}}"));
        }
        names.push(name.to_string());
        rest = &after[end + 1..];
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> Option<String> {
        match name {
            "amount" => Some("$10.00".into()),
            "gb" => Some("2".into()),
            _ => None,
        }
    }

    #[test]
    fn fills_placeholders() {
        let replies = Replies::parse("r.yaml", "confirm: \"Add {gb} GB for {amount}?\"\n").unwrap();
        assert_eq!(replies.render("confirm", &facts).unwrap(), "Add 2 GB for $10.00?");
        assert_eq!(replies.placeholders_of("confirm"), vec!["gb", "amount"]);
    }

    #[test]
    fn missing_facts_and_templates_are_errors() {
        let replies = Replies::parse("r.yaml", "x: \"Hello {name}\"\n").unwrap();
        assert_eq!(
            replies.render("x", &facts),
            Err(RenderError::MissingFact { template: "x".into(), fact: "name".into() })
        );
        assert_eq!(replies.render("y", &facts), Err(RenderError::UnknownTemplate("y".into())));
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(Replies::parse("r.yaml", "x: \"Hello {name\"\n").is_err());
        assert!(Replies::parse("r.yaml", "x: \"Hello {na me}\"\n").is_err());
    }
}
