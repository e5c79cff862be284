//! Property tests (proptest, a fixed 256 cases each) of the server's pure modules through their
//! public API:
//!
//! - position conversion ([`ghostline_lsp::position`]): on arbitrary text with CRLF, lone CR,
//!   emoji, combining characters and surrogate-pair splits, char offset → position → char
//!   offset round-trips in UTF-8, UTF-16 and UTF-32, positions agree with an independent
//!   reference, and no position (however far out of range) panics;
//! - incremental edits ([`ghostline_lsp::document::Document`]) against a reference model (a
//!   plain `String` edited by the same ranges, resolved by the same LSP rules): equal text after
//!   any sequence; out-of-range and reversed ranges never panic;
//! - shaping ([`ghostline_lsp::shaping`]) of arbitrary text: no panic, and a suggestion is
//!   made of prefixes of the model's first lines, as its documentation says (never text the
//!   model did not write), capped at `MAX_LINES`.
//!
//! It deliberately does not cover import and outline parsing (the `ghostline-context` crate
//! owns those) or anything that needs the LSP transport.

use ghostline_lsp::document::Document;
use ghostline_lsp::position::{self, Encoding};
use ghostline_lsp::shaping::{self, Cursor, Lang, Mode};
use proptest::prelude::*;
use ropey::Rope;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

const CASES: u32 = 256;

/// Pieces that make text hard: line breaks of every kind, multi-byte and astral characters,
/// combining marks, ZWJ sequences, U+2028 (not an LSP line break), tabs, NUL.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("xyz".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("é".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("😀".to_owned()),
        Just("👩‍💻".to_owned()),
        Just("日本".to_owned()),
        Just("\u{2028}".to_owned()),
        Just("\u{0}".to_owned()),
        Just("(".to_owned()),
        Just("}".to_owned()),
        Just("\"".to_owned()),
        Just(":".to_owned()),
        "[a-z ]{1,6}",
        any::<char>().prop_map(String::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|v| v.concat())
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Utf8),
        Just(Encoding::Utf16),
        Just(Encoding::Utf32)
    ]
}

/// LSP lines of `text` as (start, end of content, start of next line) in chars: lines end at
/// `\r\n`, `\n` or `\r`.
fn lines(text: &str) -> Vec<(usize, usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\r' if chars.get(i + 1) == Some(&'\n') => {
                out.push((start, i, i + 2));
                i += 2;
                start = i;
            }
            '\r' | '\n' => {
                out.push((start, i, i + 1));
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push((start, chars.len(), chars.len()));
    out
}

/// The reference: char offset of a position, by the rules `position` documents (clamp to the
/// line's end, round down inside a character, a line past the end is `None`).
fn reference_to_char(text: &str, pos: Position, enc: Encoding) -> Option<usize> {
    let chars: Vec<char> = text.chars().collect();
    let &(start, end, _) = lines(text).get(pos.line as usize)?;
    let mut units = 0u64;
    for (k, c) in chars[start..end].iter().enumerate() {
        let w = match enc {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        } as u64;
        if units + w > pos.character as u64 {
            return Some(start + k);
        }
        units += w;
    }
    Some(end)
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every char offset that is not inside a CRLF maps to a position and back to itself, and
    /// the position's line and column agree with the reference.
    #[test]
    fn offsets_round_trip_through_positions(t in text(), enc in encoding()) {
        let rope = Rope::from_str(&t);
        let ls = lines(&t);
        prop_assert_eq!(rope.len_lines(), ls.len(), "line count of {:?}", t);
        let chars: Vec<char> = t.chars().collect();
        for offset in 0..=chars.len() {
            let inside_crlf = offset > 0
                && offset < chars.len()
                && chars[offset - 1] == '\r'
                && chars[offset] == '\n';
            let p = position::to_position(&rope, offset, enc);
            let back = position::to_char(&rope, p, enc);
            prop_assert!(back.is_ok(), "{:?} {:?} -> {:?}", t, offset, p);
            if !inside_crlf {
                prop_assert_eq!(back.unwrap(), offset, "{:?} {:?} offset {} -> {:?}", t, enc, offset, p);
            }
            prop_assert_eq!(reference_to_char(&t, p, enc), Some(back.unwrap()));
        }
    }

    /// Any position, however far out of range, converts without a panic, as the reference
    /// says; the clamped forms stay inside the document and ranges come out ordered.
    #[test]
    fn any_position_converts_like_the_reference(
        t in text(),
        enc in encoding(),
        line in prop_oneof![0u32..12, Just(u32::MAX), any::<u32>()],
        character in prop_oneof![0u32..24, Just(u32::MAX), any::<u32>()],
        line2 in 0u32..12,
        character2 in 0u32..24,
    ) {
        let rope = Rope::from_str(&t);
        let p = Position { line, character };
        let got = position::to_char(&rope, p, enc).ok();
        prop_assert_eq!(got, reference_to_char(&t, p, enc), "{:?} {:?} {:?}", t, enc, p);
        let clamped = position::to_char_clamped(&rope, p, enc);
        prop_assert!(clamped <= rope.len_chars());
        let r = position::to_char_range(&rope, Range::new(p, Position::new(line2, character2)), enc);
        prop_assert!(r.start <= r.end && r.end <= rope.len_chars());
        // Every position the server produces is one the client can send back.
        let q = position::to_position(&rope, clamped, enc);
        prop_assert_eq!(position::to_char(&rope, q, enc).ok(), Some(clamped));
    }

    /// Encodings agree on where a character is: the same char offset in all three.
    #[test]
    fn encodings_agree_on_offsets(t in text(), at in any::<prop::sample::Index>()) {
        let rope = Rope::from_str(&t);
        let offset = at.index(rope.len_chars() + 1);
        let by: Vec<usize> = [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32]
            .into_iter()
            .map(|enc| position::to_char(&rope, position::to_position(&rope, offset, enc), enc).unwrap())
            .collect();
        prop_assert!(by.iter().all(|&b| b == by[0]), "{:?}", by);
    }
}

/// One edit of a test: a range by LSP coordinates (possibly out of range or reversed) and the
/// text that replaces it.
#[derive(Debug, Clone)]
struct Edit {
    start: (u32, u32),
    end: Option<(u32, u32)>,
    text: String,
}

fn coordinate() -> impl Strategy<Value = (u32, u32)> {
    prop_oneof![
        8 => (0u32..8, 0u32..16),
        1 => (0u32..100, any::<u32>()),
        1 => (any::<u32>(), any::<u32>()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    (
        coordinate(),
        prop::option::weighted(0.6, coordinate()),
        prop::collection::vec(piece(), 0..4).prop_map(|v| v.concat()),
    )
        .prop_map(|(start, end, text)| Edit { start, end, text })
}

/// The reference model: the char range the edit means (clamped, ordered, past-the-end lines
/// meaning the end), applied to a `String`.
fn reference_apply(model: &mut String, e: &Edit, enc: Encoding) {
    let len = model.chars().count();
    let at = |(line, character): (u32, u32)| {
        reference_to_char(model, Position { line, character }, enc).unwrap_or(len)
    };
    let a = at(e.start);
    let b = e.end.map_or(a, at);
    let (a, b) = (a.min(b), a.max(b));
    let (ba, bb) = (char_to_byte(model, a), char_to_byte(model, b));
    model.replace_range(ba..bb, &e.text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any sequence of incremental edits (and full replacements) leaves the document equal to
    /// the reference model; nothing panics.
    #[test]
    fn incremental_edits_match_a_reference_model(
        initial in text(),
        enc in encoding(),
        batches in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    9 => edit(),
                    // The whole document, by an out-of-range end.
                    1 => text().prop_map(|text| Edit { start: (0, 0), end: Some((u32::MAX, u32::MAX)), text }),
                ],
                1..4,
            ),
            1..12,
        ),
        full in prop::option::weighted(0.1, text()),
    ) {
        let mut doc = Document::new(&initial, 1, "python");
        let mut model = initial.clone();
        let mut version = 1;
        for batch in &batches {
            let mut changes = Vec::new();
            for e in batch {
                reference_apply(&mut model, e, enc);
                let start = Position::new(e.start.0, e.start.1);
                let end = e.end.map_or(start, |(l, c)| Position::new(l, c));
                changes.push(TextDocumentContentChangeEvent {
                    range: Some(Range::new(start, end)),
                    range_length: None,
                    text: e.text.clone(),
                });
            }
            version += 1;
            doc.apply(version, &changes, enc);
            prop_assert_eq!(doc.rope.to_string(), model.clone());
            prop_assert_eq!(doc.version, version);
        }
        if let Some(t) = full {
            doc.apply(version + 1, &[TextDocumentContentChangeEvent { range: None, range_length: None, text: t.clone() }], enc);
            prop_assert_eq!(doc.rope.to_string(), t);
        }
        // `uses_crlf` never panics, whatever the text became.
        let _ = doc.uses_crlf();
    }
}

fn lang() -> impl Strategy<Value = Lang> {
    prop_oneof![
        Just(Lang::Python),
        Just(Lang::Rust),
        Just(Lang::CLike),
        Just(Lang::Other)
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Line), Just(Mode::Block), Just(Mode::Continue)]
}

/// Code-like text: identifiers, brackets, quotes, comments, indentation and line breaks.
fn code() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[a-z_]{1,5}",
        Just(" ".to_owned()),
        Just("    ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(";".to_owned()),
        Just(",".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("#".to_owned()),
        Just("//".to_owned()),
        Just("é".to_owned()),
        Just("😀".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Shaping arbitrary model output at an arbitrary cursor never panics, and what it keeps is
    /// made of prefixes of the model's first lines (after CRLF becomes LF), at most
    /// `MAX_LINES` of them, never blank.
    #[test]
    fn shaping_keeps_prefixes_of_the_model_lines(
        prefix in code(),
        suffix in code(),
        raw in code(),
        lang in lang(),
        mode in mode(),
        max_tokens in 1usize..512,
    ) {
        let cursor = Cursor::new(&prefix, &suffix, lang);
        let _ = shaping::skip_automatic(&cursor);
        let plan = shaping::plan(&cursor, max_tokens, false);
        prop_assert!(plan.max_tokens <= max_tokens && plan.max_tokens >= 1);
        // An explicit request may fill a whole block: up to 256 tokens whatever the setting.
        let invoked = shaping::plan(&cursor, max_tokens, true);
        prop_assert!(invoked.max_tokens <= max_tokens.max(256) && invoked.max_tokens >= 1);
        let _ = shaping::finished_lines(&raw);
        for m in [mode, plan.mode] {
            let Some(shaped) = shaping::shape(&cursor, m, &raw) else { continue };
            prop_assert!(!shaped.trim().is_empty(), "blank suggestion from {:?}", raw);
            let normalized = raw.replace("\r\n", "\n");
            let raw_lines: Vec<&str> = normalized.split('\n').collect();
            let out_lines: Vec<&str> = shaped.split('\n').collect();
            prop_assert!(out_lines.len() <= shaping::MAX_LINES, "{} lines", out_lines.len());
            prop_assert!(out_lines.len() <= raw_lines.len(), "{:?} from {:?}", shaped, raw);
            for (o, r) in out_lines.iter().zip(&raw_lines) {
                prop_assert!(r.starts_with(o), "{:?} is not a prefix of the model's line {:?} (raw {:?}, {:?})", o, r, raw, m);
            }
            if m == Mode::Line {
                prop_assert_eq!(out_lines.len(), 1);
            }
        }
    }

    /// `Lang::detect` and `finished_lines` accept anything.
    #[test]
    fn language_detection_and_finished_lines_never_panic(id in ".{0,12}", path in ".{0,24}", t in code()) {
        let lang = Lang::detect(&id, &path);
        let _ = lang.line_comment();
        let f = shaping::finished_lines(&t);
        prop_assert!(t.starts_with(f));
        prop_assert!(f.is_empty() || f.ends_with('\n'));
    }
}
