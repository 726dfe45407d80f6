//! Diagnostics that point into a policy file: Cedar's own errors carry the text they were parsed
//! from but not its file name, so each is re-anchored to its file here.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::sync::Arc;

/// A diagnostic about a span of a named file.
#[derive(Debug, Clone)]
pub struct InFile {
    message: String,
    severity: Option<miette::Severity>,
    code: Option<String>,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    src: NamedSource<Arc<str>>,
}

impl InFile {
    /// A diagnostic of our own, about `span`.
    pub fn new(
        message: String,
        span: SourceSpan,
        label: &str,
        help: Option<String>,
        src: NamedSource<Arc<str>>,
    ) -> Self {
        InFile {
            message,
            severity: None,
            code: Some("trailcedar::pack".to_string()),
            help,
            labels: vec![LabeledSpan::new_with_span(Some(label.to_string()), span)],
            src,
        }
    }

    /// Cedar's diagnostic, shown against the named file.
    pub fn wrap(d: &dyn Diagnostic, src: NamedSource<Arc<str>>) -> Self {
        InFile {
            message: d.to_string(),
            severity: d.severity(),
            code: d.code().map(|c| c.to_string()),
            help: d.help().map(|h| h.to_string()),
            labels: d.labels().map(|l| l.collect()).unwrap_or_default(),
            src,
        }
    }
}

impl InFile {
    /// The same diagnostic, as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Some(miette::Severity::Warning);
        self
    }

    /// The same diagnostic, as an error (Cedar's warnings are errors for some of ours).
    pub fn error(mut self) -> Self {
        self.severity = Some(miette::Severity::Error);
        self
    }

    /// The same diagnostic with another message and help, keeping its spans.
    pub fn reworded(mut self, message: String, help: Option<String>) -> Self {
        self.message = message;
        self.help = help;
        self
    }
}

impl fmt::Display for InFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InFile {}

impl Diagnostic for InFile {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code
            .as_ref()
            .map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.severity
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}
