//! The completion pipeline as pure functions: what to ask the model at a cursor
//! ([`prepare`]: the FIM request and the shaping mode) and what to offer from its answer
//! ([`finish`]). The inline handler, the completion fallback (both through `complete.rs`) and
//! `ghostline complete` call these two, so the command line asks what an editor asks.
//!
//! No LSP types, no shared state, no model: the caller computes the window (see
//! [`crate::window::window`]), fetches the repository context and runs the request.

use std::time::{Duration, Instant};

use ghostline_inference::{ColdWindow, ContextBlock, FimRequest, LineEnd, Settled, StopReason};

use crate::shaping::{self, Cursor, Lang, Mode};

/// The place of a completion: the text before and after the cursor (a window of the document)
/// and what is known about the file.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    /// Text before the cursor.
    pub prefix: &'a str,
    /// Text after the cursor.
    pub suffix: &'a str,
    /// The document's language.
    pub lang: Lang,
    /// Workspace-relative path.
    pub path: Option<String>,
    /// Repository name.
    pub repo_name: Option<String>,
}

/// The settings of one request.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The configured token cap.
    pub max_tokens: usize,
    /// The user asked (Invoked); otherwise as-you-type.
    pub invoked: bool,
    /// Time budget in milliseconds (0: none), counted from `arrived`.
    pub budget_ms: u64,
    /// When the request arrived: the budget bounds what the user waits, context building and
    /// queueing included.
    pub arrived: Instant,
    /// The smaller window an as-you-type request falls back to at a cold place (`None`: off).
    pub cold_window: Option<ColdWindow>,
}

/// What to run, and how to shape its answer.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The request for the backend.
    pub request: FimRequest,
    /// Line or block, for [`finish`].
    pub mode: Mode,
}

/// The request and shaping mode for `place`, with the repository `context`.
pub fn prepare(place: &Place<'_>, context: Vec<ContextBlock>, settings: Settings) -> Prepared {
    let cur = Cursor::new(place.prefix, place.suffix, place.lang);
    let plan = shaping::plan(&cur, settings.max_tokens, settings.invoked);
    let request = FimRequest {
        prefix: place.prefix.to_owned(),
        suffix: place.suffix.to_owned(),
        path: place.path.clone(),
        repo_name: place.repo_name.clone(),
        context,
        max_tokens: Some(plan.max_tokens),
        stop: plan.stop.clone(),
        stop_at_suffix: true,
        line_end: plan.line_end_openers.clone().map(|openers| LineEnd {
            cursor_line: cur.before.to_owned(),
            openers,
            line_comment: place.lang.line_comment().to_owned(),
        }),
        order: None,
        deadline: (settings.budget_ms > 0)
            .then(|| settings.arrived + Duration::from_millis(settings.budget_ms)),
        // A cursor right after a word character: the model re-chooses the last token.
        token_healing: place
            .prefix
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_'),
        // The caller names the document whose KV state the engine keeps (editors: its URI).
        document: None,
        // The user who asked waits for the whole window; as-you-type gets a fast first
        // suggestion at a cold place.
        cold_window: settings.cold_window.filter(|_| !settings.invoked),
        // The caller that waits for the first finished line sets it (see `crate::complete`).
        progress: None,
        // The user asked: a blank answer helps nobody.
        non_empty: settings.invoked,
        // A block the shaping has ended for good stops the run (saves what it would cut).
        settled: settled_check(place, plan.mode),
    };
    Prepared {
        request,
        mode: plan.mode,
    }
}

/// The check that stops a block's run once [`shaping::settled`] says its suggestion can no
/// longer change; `None` for a single line (its stop rules end it).
fn settled_check(place: &Place<'_>, mode: Mode) -> Option<Settled> {
    if mode == Mode::Line {
        return None;
    }
    let (prefix, suffix, lang) = (place.prefix.to_owned(), place.suffix.to_owned(), place.lang);
    Some(Settled::new(move |text| {
        shaping::settled(&Cursor::new(&prefix, &suffix, lang), mode, text)
    }))
}

/// The suggestion to offer from the model's `text` (ended by `stop`), or `None`.
pub fn finish(
    prefix: &str,
    suffix: &str,
    lang: Lang,
    mode: Mode,
    text: &str,
    stop: StopReason,
) -> Option<String> {
    let cursor = Cursor::new(prefix, suffix, lang);
    // A run cut off by its time budget ends mid-line: offer only finished lines.
    let text = if stop == StopReason::Deadline {
        shaping::finished_lines(text)
    } else {
        text
    };
    shaping::shape(&cursor, mode, text)
}

/// What an as-you-type request may offer from a run that is still going, whose `text` so far
/// is this: its finished lines, shaped as [`finish`] shapes a run cut off by its budget, once
/// they hold something; `None` while they do not.
///
/// A finished line that repeats the suffix's next line is held back until the run shows
/// whether it goes on as the suffix does (then the stop rules cut it) or not.
pub fn partial(prefix: &str, suffix: &str, lang: Lang, mode: Mode, text: &str) -> Option<String> {
    let mut lines = shaping::finished_lines(text);
    let next = suffix.lines().map(str::trim).find(|l| !l.is_empty());
    let last = lines
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("");
    if next.is_some_and(|n| n == last.trim()) {
        lines = shaping::finished_lines(lines.trim_end_matches('\n'));
    }
    if lines.trim().is_empty() {
        return None;
    }
    let cursor = Cursor::new(prefix, suffix, lang);
    shaping::shape(&cursor, mode, lines).filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(prefix: &'a str, suffix: &'a str) -> Place<'a> {
        Place {
            prefix,
            suffix,
            lang: Lang::Python,
            path: Some("a.py".into()),
            repo_name: None,
        }
    }

    #[test]
    fn a_block_the_shaping_has_ended_stops_its_run_with_the_same_suggestion() {
        use ghostline_inference::{complete_blocking, CancelToken, FakeBackend};
        // The model fills the body, then goes on with the next function of the file.
        let body = "    total = 0\n    for x in xs:\n        total += x\n    return total\n";
        let more = "\n\ndef g(ys):\n    \"\"\"Another one.\"\"\"\n    return [y * 2 for y in ys]\n\n\nprint(g([1]))\n";
        let raw = format!("{body}{more}");
        let p = place("def f(xs):\n", "\n");
        let s = Settings {
            max_tokens: 128,
            invoked: true,
            budget_ms: 0,
            arrived: Instant::now(),
            cold_window: None,
        };
        let prepared = prepare(&p, Vec::new(), s);
        assert_eq!(prepared.mode, Mode::Block);
        let script = raw.clone();
        let fake = FakeBackend::new().with_script(move |_| script.clone());
        let c = complete_blocking(&fake, prepared.request.clone(), CancelToken::new()).unwrap();
        // Stopped once the first line outside the function was finished, not at the end.
        assert_eq!(c.stop, StopReason::ScopeEnded);
        assert!(
            c.text.starts_with(body) && c.text.len() < raw.len(),
            "{c:?}"
        );
        let shaped =
            |text: &str, stop| finish(p.prefix, p.suffix, p.lang, prepared.mode, text, stop);
        assert_eq!(shaped(&c.text, c.stop), shaped(&raw, StopReason::EndOfText));
        assert_eq!(shaped(&c.text, c.stop).as_deref(), Some(body.trim_end()));
        // A single line has its own stop rules: no check.
        let line = prepare(&place("x = ", "f(1)\n"), Vec::new(), s);
        assert_eq!(line.mode, Mode::Line);
        assert!(line.request.settled.is_none());
    }

    #[test]
    fn explicit_and_automatic_requests_differ_only_in_their_ends() {
        let p = place("def f(xs):\n    ", "\n");
        let cold = ColdWindow {
            prefix_tokens: 320,
            suffix_tokens: 96,
            target_ms: 2000,
        };
        let s = Settings {
            max_tokens: 128,
            invoked: true,
            budget_ms: 0,
            arrived: Instant::now(),
            cold_window: Some(cold),
        };
        let invoked = prepare(&p, Vec::new(), s);
        let automatic = prepare(
            &p,
            Vec::new(),
            Settings {
                invoked: false,
                ..s
            },
        );
        assert_eq!(invoked.mode, Mode::Block);
        assert!(invoked.request.stop.is_empty());
        assert_eq!(automatic.request.stop, vec!["\n\n".to_owned()]);
        assert!(invoked.request.max_tokens > automatic.request.max_tokens);
        assert!(invoked.request.deadline.is_none() && invoked.request.stop_at_suffix);
        assert!(invoked.request.non_empty && !automatic.request.non_empty);
        assert!(!invoked.request.token_healing);
        // Only as-you-type requests fall back to the small window at a cold place.
        assert_eq!(invoked.request.cold_window, None);
        assert_eq!(automatic.request.cold_window, Some(cold));
    }

    #[test]
    fn a_cursor_after_a_word_heals_and_stops_at_the_line_end_while_typing() {
        let p = place("def f(n):\n    return fib", "\n");
        let s = Settings {
            max_tokens: 128,
            invoked: false,
            budget_ms: 500,
            arrived: Instant::now() - Duration::from_millis(200),
            cold_window: None,
        };
        let r = prepare(&p, Vec::new(), s);
        assert!(r.request.token_healing);
        assert!(r.request.line_end.is_some());
        // The budget counts from the request's arrival, not from when the request was built.
        assert_eq!(
            r.request.deadline,
            Some(s.arrived + Duration::from_millis(500))
        );
        assert_eq!(r.mode, Mode::Continue);
        // Asked for explicitly, the continuation runs to the model's end of the middle.
        let r = prepare(&p, Vec::new(), Settings { invoked: true, ..s });
        assert!(r.request.token_healing);
        assert!(r.request.line_end.is_none());
        assert!(r.request.stop.is_empty());
        assert_eq!(r.mode, Mode::Continue);
    }

    #[test]
    fn a_deadline_keeps_only_finished_lines() {
        let (pre, suf) = ("def f():\n    ", "\n");
        assert_eq!(
            finish(
                pre,
                suf,
                Lang::Python,
                Mode::Block,
                "x = 1\n    y = x +",
                StopReason::Deadline
            )
            .as_deref(),
            Some("x = 1")
        );
        assert_eq!(
            finish(
                pre,
                suf,
                Lang::Python,
                Mode::Block,
                "x = 1\n    y = x + 1",
                StopReason::EndOfText
            )
            .as_deref(),
            Some("x = 1\n    y = x + 1")
        );
    }

    #[test]
    fn a_run_still_going_offers_its_finished_lines() {
        let (pre, suf) = ("def f(xs):\n    ", "\n\ndef g():\n    pass\n");
        let p = |t| partial(pre, suf, Lang::Python, Mode::Block, t);
        assert_eq!(p("total = 0"), None, "nothing finished yet");
        assert_eq!(p("total = 0\n    for x"), Some("total = 0".into()));
        // A block's opener is offered with its first body line, as at the end of a run.
        assert_eq!(
            p("total = 0\n    for x in xs:\n        total"),
            Some("total = 0".into())
        );
        assert_eq!(
            p("total = 0\n    for x in xs:\n        total += x\n    re"),
            Some("total = 0\n    for x in xs:\n        total += x".into())
        );
        assert_eq!(p("\n"), None, "a blank line is nothing to offer");
        // A line that repeats the suffix's next line waits for the line after it.
        let (pre, suf) = ("    x = 1\n    ", "\n    return x\n");
        let p = |t| partial(pre, suf, Lang::Python, Mode::Block, t);
        assert_eq!(p("return x\n"), None);
        assert_eq!(p("x += 1\n    return x\n"), Some("x += 1".into()));
    }
}
