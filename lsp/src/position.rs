//! Conversion between LSP positions and character offsets in a [`Rope`], for the three position
//! encodings of LSP 3.17 (UTF-8 bytes, UTF-16 code units, UTF-32 code points).
//!
//! This is the only module that knows about encodings: everything else in the server works with
//! `char` offsets into the rope. Lines end at `\n`, `\r\n` or `\r`, as LSP says. A character
//! offset past the end of a line clamps to the end of that line (as the specification asks); a
//! position that splits a UTF-16 surrogate pair or a UTF-8 sequence rounds down to the start of
//! the character. It never panics on any input. It does not decide what to do with a line past
//! the end of the file: [`to_char`] reports it and [`to_char_clamped`] clamps it.

use ropey::Rope;
use tower_lsp_server::ls_types::{Position, PositionEncodingKind, Range};

/// How the client counts `Position::character`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 code units (bytes).
    Utf8,
    /// UTF-16 code units; the LSP default.
    #[default]
    Utf16,
    /// Unicode code points.
    Utf32,
}

impl Encoding {
    /// Picks the client's most preferred encoding among those it offers (they come in order of
    /// preference); UTF-16 when it offers none.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        offered
            .unwrap_or_default()
            .iter()
            .find_map(Encoding::from_kind)
            .unwrap_or_default()
    }

    fn from_kind(kind: &PositionEncodingKind) -> Option<Encoding> {
        match kind.as_str() {
            "utf-8" => Some(Encoding::Utf8),
            "utf-16" => Some(Encoding::Utf16),
            "utf-32" => Some(Encoding::Utf32),
            _ => None,
        }
    }

    /// The kind announced in the server capabilities.
    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
            Encoding::Utf32 => PositionEncodingKind::UTF32,
        }
    }

    /// Length of one character in this encoding's units.
    pub fn units(self, c: char) -> u32 {
        match self {
            Encoding::Utf8 => c.len_utf8() as u32,
            Encoding::Utf16 => c.len_utf16() as u32,
            Encoding::Utf32 => 1,
        }
    }

    /// Length of a string in this encoding's units.
    pub fn len(self, s: &str) -> u32 {
        match self {
            Encoding::Utf8 => s.len() as u32,
            Encoding::Utf16 => s.chars().map(char::len_utf16).sum::<usize>() as u32,
            Encoding::Utf32 => s.chars().count() as u32,
        }
    }
}

/// A position whose line does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineOutOfRange {
    /// The line asked for.
    pub line: u32,
    /// How many lines the document has.
    pub lines: usize,
}

impl std::fmt::Display for LineOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {} is past the end of the document ({} lines)",
            self.line, self.lines
        )
    }
}

/// Character offset of `pos`. The character is clamped to the end of its line; a line past the
/// last one is an error.
pub fn to_char(rope: &Rope, pos: Position, enc: Encoding) -> Result<usize, LineOutOfRange> {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return Err(LineOutOfRange {
            line: pos.line,
            lines: rope.len_lines(),
        });
    }
    let start = rope.line_to_char(line);
    let mut units = 0u32;
    let mut offset = start;
    for c in rope.line(line).chars() {
        if c == '\n' || c == '\r' {
            break;
        }
        let w = enc.units(c);
        if units + w > pos.character {
            break;
        }
        units += w;
        offset += 1;
    }
    Ok(offset)
}

/// Like [`to_char`], but a line past the end of the document means the end of the document.
pub fn to_char_clamped(rope: &Rope, pos: Position, enc: Encoding) -> usize {
    to_char(rope, pos, enc).unwrap_or(rope.len_chars())
}

/// The character range of `range`, clamped, with start ≤ end.
pub fn to_char_range(rope: &Rope, range: Range, enc: Encoding) -> std::ops::Range<usize> {
    let a = to_char_clamped(rope, range.start, enc);
    let b = to_char_clamped(rope, range.end, enc);
    a.min(b)..a.max(b)
}

/// The position of character offset `offset` (clamped to the end of the document).
pub fn to_position(rope: &Rope, offset: usize, enc: Encoding) -> Position {
    let offset = offset.min(rope.len_chars());
    let line = rope.char_to_line(offset);
    let start = rope.line_to_char(line);
    let character = rope
        .slice(start..offset)
        .chars()
        .map(|c| enc.units(c))
        .sum();
    Position {
        line: line as u32,
        character,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    /// Text of the rope from the start of the document to `pos` — what the cursor has before it.
    fn before(text: &str, p: Position, enc: Encoding) -> String {
        let rope = Rope::from_str(text);
        let c = to_char(&rope, p, enc).unwrap();
        rope.slice(..c).to_string()
    }

    #[test]
    fn ascii_is_the_same_in_every_encoding() {
        for enc in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            assert_eq!(before("abc\ndef\n", pos(1, 2), enc), "abc\nde");
        }
    }

    #[test]
    fn e_acute_counts_one_utf16_unit_and_two_utf8_bytes() {
        let text = "café = 1\n";
        assert_eq!(before(text, pos(0, 4), Encoding::Utf16), "café");
        assert_eq!(before(text, pos(0, 5), Encoding::Utf8), "café");
        assert_eq!(before(text, pos(0, 4), Encoding::Utf32), "café");
        // Half of é in UTF-8 rounds down.
        assert_eq!(before(text, pos(0, 4), Encoding::Utf8), "caf");
    }

    #[test]
    fn emoji_counts_two_utf16_units_four_bytes_one_code_point() {
        let text = "x = \"😀\" + y\n";
        assert_eq!(before(text, pos(0, 8), Encoding::Utf16), "x = \"😀\"");
        assert_eq!(before(text, pos(0, 10), Encoding::Utf8), "x = \"😀\"");
        assert_eq!(before(text, pos(0, 7), Encoding::Utf32), "x = \"😀\"");
        // Inside the surrogate pair rounds down to the start of the emoji.
        assert_eq!(before(text, pos(0, 6), Encoding::Utf16), "x = \"");
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let text = "ab\r\ncd\ref";
        assert_eq!(before(text, pos(1, 1), Encoding::Utf16), "ab\r\nc");
        assert_eq!(before(text, pos(2, 2), Encoding::Utf16), "ab\r\ncd\ref");
        // Past the end of a CRLF line clamps before the line break.
        assert_eq!(before(text, pos(0, 99), Encoding::Utf16), "ab");
    }

    #[test]
    fn past_end_of_line_clamps_past_end_of_file_is_reported() {
        let rope = Rope::from_str("one\ntwo\n");
        assert_eq!(to_char(&rope, pos(0, 100), Encoding::Utf16), Ok(3));
        // The empty line after the final newline exists.
        assert_eq!(to_char(&rope, pos(2, 0), Encoding::Utf16), Ok(8));
        assert_eq!(to_char(&rope, pos(2, 5), Encoding::Utf16), Ok(8));
        assert_eq!(
            to_char(&rope, pos(3, 0), Encoding::Utf16),
            Err(LineOutOfRange { line: 3, lines: 3 })
        );
        assert_eq!(
            to_char_clamped(&rope, pos(u32::MAX, u32::MAX), Encoding::Utf8),
            8
        );
    }

    #[test]
    fn empty_document() {
        let rope = Rope::new();
        assert_eq!(to_char(&rope, pos(0, 0), Encoding::Utf16), Ok(0));
        assert_eq!(to_char(&rope, pos(0, 7), Encoding::Utf16), Ok(0));
        assert!(to_char(&rope, pos(1, 0), Encoding::Utf16).is_err());
        assert_eq!(to_position(&rope, 10, Encoding::Utf16), pos(0, 0));
    }

    #[test]
    fn positions_round_trip() {
        let text = "a😀é\r\n\tß\u{2028}x\n";
        let rope = Rope::from_str(text);
        for enc in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            for offset in 0..=rope.len_chars() {
                let p = to_position(&rope, offset, enc);
                let back = to_char(&rope, p, enc).unwrap();
                // The '\n' of a CRLF maps into the same line; everything else round-trips.
                if rope.char(offset.min(rope.len_chars() - 1)) != '\n' || offset == rope.len_chars()
                {
                    assert_eq!(back, offset, "{enc:?} offset {offset} -> {p:?}");
                }
            }
        }
    }

    #[test]
    fn unicode_line_separators_are_not_lsp_line_breaks() {
        // U+2028 is an ordinary character for LSP.
        let rope = Rope::from_str("a\u{2028}b\nc");
        assert_eq!(rope.len_lines(), 2);
        assert_eq!(to_char(&rope, pos(1, 0), Encoding::Utf16), Ok(4));
    }

    #[test]
    fn ranges_are_ordered_and_clamped() {
        let rope = Rope::from_str("hello\nworld");
        let r = Range {
            start: pos(1, 3),
            end: pos(0, 1),
        };
        assert_eq!(to_char_range(&rope, r, Encoding::Utf16), 1..9);
        let r = Range {
            start: pos(1, 3),
            end: pos(9, 9),
        };
        assert_eq!(to_char_range(&rope, r, Encoding::Utf16), 9..11);
    }

    #[test]
    fn negotiation_prefers_the_clients_first_supported_choice() {
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
        let offered = [
            PositionEncodingKind::new("utf-7"),
            PositionEncodingKind::UTF8,
            PositionEncodingKind::UTF16,
        ];
        assert_eq!(Encoding::negotiate(Some(&offered)), Encoding::Utf8);
        let offered = [PositionEncodingKind::UTF32];
        assert_eq!(Encoding::negotiate(Some(&offered)), Encoding::Utf32);
        assert_eq!(Encoding::negotiate(Some(&[])), Encoding::Utf16);
    }
}
