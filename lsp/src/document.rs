//! The documents the client has opened: a [`Rope`] per URI, kept in step with full and
//! incremental `didChange` notifications.
//!
//! Applying an edit never fails: ranges are clamped to the document (a notification cannot be
//! answered with an error). This module does not know about requests, the model or the workspace.

use ropey::Rope;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

use crate::position::{self, Encoding};

/// One open document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The text.
    pub rope: Rope,
    /// The client's version number.
    pub version: i32,
    /// The client's language id (`python`, `rust`, …).
    pub language_id: String,
}

impl Document {
    /// A document as sent by `didOpen`.
    pub fn new(text: &str, version: i32, language_id: &str) -> Self {
        Document {
            rope: Rope::from_str(text),
            version,
            language_id: language_id.to_owned(),
        }
    }

    /// Applies the changes of one `didChange`, in order.
    pub fn apply(
        &mut self,
        version: i32,
        changes: &[TextDocumentContentChangeEvent],
        enc: Encoding,
    ) {
        for change in changes {
            match change.range {
                None => self.rope = Rope::from_str(&change.text),
                Some(range) => {
                    let chars = position::to_char_range(&self.rope, range, enc);
                    self.rope.remove(chars.clone());
                    self.rope.insert(chars.start, &change.text);
                }
            }
        }
        self.version = version;
    }

    /// Whether the document uses `\r\n` line breaks (judged from its first line break).
    pub fn uses_crlf(&self) -> bool {
        let line = self.rope.line(0);
        let n = line.len_chars();
        n >= 2 && line.char(n - 1) == '\n' && line.char(n - 2) == '\r'
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp_server::ls_types::{Position, Range};

    fn edit(l1: u32, c1: u32, l2: u32, c2: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(l1, c1), Position::new(l2, c2))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn incremental_edits_in_order() {
        let mut doc = Document::new("def f():\n    pass\n", 1, "python");
        doc.apply(
            2,
            &[
                edit(1, 4, 1, 8, "return 1"),
                edit(0, 4, 0, 5, "g"),
                edit(2, 0, 2, 0, "x = 😀\n"),
            ],
            Encoding::Utf16,
        );
        assert_eq!(doc.rope.to_string(), "def g():\n    return 1\nx = 😀\n");
        doc.apply(3, &[edit(2, 4, 2, 6, "é")], Encoding::Utf16);
        assert_eq!(doc.rope.to_string(), "def g():\n    return 1\nx = é\n");
        assert_eq!(doc.version, 3);
    }

    #[test]
    fn full_replacement_and_out_of_range_edits() {
        let mut doc = Document::new("abc", 1, "text");
        doc.apply(
            2,
            &[TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: "new\r\ntext".into(),
            }],
            Encoding::Utf16,
        );
        assert!(doc.uses_crlf());
        // A range past the end is clamped to the end.
        doc.apply(3, &[edit(7, 0, 9, 9, "!")], Encoding::Utf16);
        assert_eq!(doc.rope.to_string(), "new\r\ntext!");
        // Reversed ranges are ordered.
        doc.apply(4, &[edit(1, 4, 0, 3, "")], Encoding::Utf16);
        assert_eq!(doc.rope.to_string(), "new!");
    }
}
