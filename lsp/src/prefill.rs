//! What to evaluate ahead of the cursor (issue 12, lever 2): the starts of a document's prompt
//! that serve the places the user may jump to next.
//!
//! A prefix starts at an anchor line (see [`crate::window::Windows::line_step`]); every
//! cursor of one band of lines shares its anchor, so one evaluated start — the prompt up to
//! the last character any cursor of the band has before it — serves a jump to any line of the
//! band: the request then evaluates only its suffix. The plan is the band of the cursor, then
//! the bands below and above it, nearest first, two below for one above (code is read and
//! jumped through downwards more often). The engine works on the plan only while idle (see
//! `ghostline_inference::Backend::prefill`).
//!
//! Pure functions of the text and the window sizes: no state, no model.

use ghostline_inference::{FimRequest, PrefillItem};
use ropey::Rope;

use crate::window::{anchor_line, prefix_start, Windows};

/// The cursors whose prefix starts at one anchor line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// The anchor line.
    pub line: usize,
    /// Where (chars) their prefix starts: the anchor line's start.
    pub from: usize,
    /// The last cursor (chars) of the band: the prefill covers `from..to`.
    pub to: usize,
}

/// The band of anchor line `line`, or `None` past the end of the document.
pub fn band(rope: &Rope, line: usize, sizes: Windows) -> Option<Band> {
    let lines = rope.len_lines();
    if line >= lines {
        return None;
    }
    let step = sizes.line_step();
    let line_start = |l: usize| rope.line_to_char(l.min(lines - 1));
    // A cursor maps to this anchor when the first line inside its window lies in
    // `first_min..=first_max`; the first line is at most `first_max` as long as the cursor is
    // at most the window's length past that line's start.
    let first_min = line.saturating_sub(step / 2);
    let first_max = line + (step - 1) - step / 2;
    let to = if first_max + 1 >= lines {
        rope.len_chars()
    } else {
        (line_start(first_max) + sizes.prefix_chars).min(rope.len_chars())
    };
    let from = line_start(line);
    // No cursor reaches this band when even the end of the document is too close to it.
    if line > 0 && line_start(first_min) + sizes.prefix_chars > rope.len_chars() {
        return None;
    }
    Some(Band { line, from, to })
}

/// The anchor line the prefix of a cursor at `cursor` (chars) starts at, or `None` when its
/// prefix is cut inside a line (an enormous line: nothing to plan).
pub fn anchor_of(rope: &Rope, cursor: usize, sizes: Windows) -> Option<usize> {
    let cursor = cursor.min(rope.len_chars());
    let from = prefix_start(rope, cursor, sizes);
    let line = rope.char_to_line(from);
    (rope.line_to_char(line) == from && anchor_line(line, sizes.line_step()) == line)
        .then_some(line)
}

/// Up to `max` bands, nearest to the cursor's first: its own, then two below for one above
/// ([`BELOW_PER_ABOVE`]) until one side runs out.
pub fn plan(rope: &Rope, cursor: usize, sizes: Windows, max: usize) -> Vec<Band> {
    let Some(own) = anchor_of(rope, cursor, sizes) else {
        return Vec::new();
    };
    let step = sizes.line_step();
    let mut out: Vec<Band> = band(rope, own, sizes).into_iter().collect();
    let (mut below, mut above) = (Some(1usize), Some(1usize));
    while out.len() < max && (below.is_some() || above.is_some()) {
        for _ in 0..BELOW_PER_ABOVE {
            if let Some(k) = below {
                below = band(rope, own + k * step, sizes).map(|b| {
                    out.push(b);
                    k + 1
                });
            }
        }
        if let Some(k) = above {
            above = own
                .checked_sub(k * step)
                .and_then(|line| band(rope, line, sizes))
                .map(|b| {
                    out.push(b);
                    k + 1
                });
        }
    }
    out.truncate(max);
    out
}

/// Bands planned below the cursor for each one above: code is read, and jumped through,
/// downwards more often than upwards.
const BELOW_PER_ABOVE: usize = 2;

/// The prefill items for `bands`: `template`'s request (its context, path, token cap and
/// document: what a request at the band's last cursor would send) with the band's text as
/// the prefix and no suffix.
pub fn items(rope: &Rope, bands: &[Band], template: &FimRequest) -> Vec<PrefillItem> {
    bands
        .iter()
        .map(|b| PrefillItem {
            anchor: b.line.to_string(),
            request: FimRequest {
                prefix: rope.slice(b.from..b.to).to_string(),
                path: template.path.clone(),
                repo_name: template.repo_name.clone(),
                context: template.context.clone(),
                max_tokens: template.max_tokens,
                order: template.order,
                document: template.document.clone(),
                ..FimRequest::default()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::window;

    fn code(lines: usize) -> Rope {
        // Lines of different lengths, like code.
        let text: String = (0..lines)
            .map(|i| {
                format!(
                    "{}x_{i} = {}\n",
                    "    ".repeat(i % 3),
                    "y".repeat(i * 7 % 50)
                )
            })
            .collect();
        Rope::from_str(&text)
    }

    #[test]
    fn every_cursor_finds_its_prefix_at_the_start_of_its_anchors_band() {
        let sizes = Windows {
            prefix_chars: 3000,
            suffix_chars: 1000,
        };
        let rope = code(800);
        for line in (0..rope.len_lines()).step_by(3) {
            for col in [0, 5] {
                let start = rope.line_to_char(line);
                let end = if line + 1 < rope.len_lines() {
                    rope.line_to_char(line + 1)
                } else {
                    rope.len_chars()
                };
                let cursor = (start + col).min(end);
                let w = window(&rope, cursor, cursor, "", sizes);
                let anchor = anchor_of(&rope, cursor, sizes).expect("an anchor");
                let b = band(&rope, anchor, sizes).expect("a band");
                assert!(cursor <= b.to, "line {line}: cursor {cursor} past {b:?}");
                let text = rope.slice(b.from..b.to).to_string();
                assert!(
                    text.starts_with(&w.prefix),
                    "line {line}: the band {b:?} does not start with the prefix"
                );
            }
        }
    }

    #[test]
    fn the_plan_starts_at_the_cursor_then_goes_two_below_for_one_above() {
        let sizes = Windows::default();
        let step = sizes.line_step();
        let rope = code(2000);
        let cursor = rope.line_to_char(1000);
        let own = anchor_of(&rope, cursor, sizes).unwrap();
        let lines: Vec<usize> = plan(&rope, cursor, sizes, 6)
            .iter()
            .map(|b| b.line)
            .collect();
        let below = |k: usize| own + k * step;
        assert_eq!(
            lines,
            [own, below(1), below(2), own - step, below(3), below(4)]
        );
        // Near the top only the bands below remain.
        let lines: Vec<usize> = plan(&rope, 10, sizes, 4).iter().map(|b| b.line).collect();
        assert_eq!(lines, [0, step, 2 * step, 3 * step]);
        // Off: nothing.
        assert!(plan(&rope, cursor, sizes, 0).is_empty());
        // A small file: its one band.
        let small = Rope::from_str("def f():\n    return 1\n");
        let bands = plan(&small, 5, sizes, 8);
        assert_eq!(bands.len(), 1);
        assert_eq!((bands[0].from, bands[0].to), (0, small.len_chars()));
    }

    #[test]
    fn items_carry_the_band_text_and_the_template_but_no_suffix() {
        let sizes = Windows::default();
        let rope = code(600);
        let template = FimRequest {
            prefix: "p".into(),
            suffix: "s".into(),
            path: Some("a.py".into()),
            document: Some("file:///a.py".into()),
            max_tokens: Some(64),
            stop: vec!["\n".into()],
            ..FimRequest::default()
        };
        let bands = plan(&rope, rope.line_to_char(300), sizes, 3);
        let items = items(&rope, &bands, &template);
        assert_eq!(items.len(), 3);
        for (item, b) in items.iter().zip(&bands) {
            assert_eq!(item.anchor, b.line.to_string());
            assert_eq!(item.request.prefix, rope.slice(b.from..b.to).to_string());
            assert!(item.request.suffix.is_empty() && item.request.stop.is_empty());
            assert_eq!(item.request.document, template.document);
            assert_eq!(item.request.max_tokens, Some(64));
        }
    }
}
