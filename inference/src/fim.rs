//! Fill-in-the-middle prompt formats: which one a model speaks, and how a prompt is rendered.
//!
//! The format is chosen from the model's own special tokens (`detect`), or from a template in
//! the configuration (`FimFormat::from_template`). Rendering is pure string work. A prompt is
//! rendered as [`Segment`]s: the format's own text (tokenized with special-token parsing, so
//! every marker becomes exactly one token) and plain text (the document, paths and context,
//! which are never parsed for special tokens).
//!
//! Repository context (other files of the project) is rendered in the family's native form —
//! `<|file_sep|>path` for Qwen2.5-Coder and StarCoder2, a path comment in the file's comment
//! syntax (`ghostline-lang`'s markers) otherwise — and always comes first, so consecutive keystrokes share a long token
//! prefix. This module does not tokenize, does not trim to a budget and knows nothing of files.

use std::fmt;

/// A file of the repository shown to the model before the current file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContextBlock {
    /// Workspace-relative path, `/`-separated.
    pub path: String,
    /// The file's text (whole, or an outline of it).
    pub text: String,
}

/// Which part of the file comes first in the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FimOrder {
    /// prefix, suffix, middle.
    Psm,
    /// suffix, prefix, middle.
    Spm,
}

impl fmt::Display for FimOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FimOrder::Psm => "PSM",
            FimOrder::Spm => "SPM",
        })
    }
}

/// How other files of the repository are introduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextStyle {
    /// Special separator tokens before the FIM part: `{repo}` header, then `{path}` headers.
    /// The current file gets a header too, right before the FIM markers.
    FileSeparators {
        /// Header of the whole repository, with `{repo}` (e.g. `<|repo_name|>{repo}\n`).
        repo_header: Option<String>,
        /// Header of each file, with `{path}` (e.g. `<|file_sep|>{path}\n`).
        file_header: String,
    },
    /// A comment line `<comment> path` ahead of each file, inside the prefix.
    PathComments,
}

/// A fill-in-the-middle prompt format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimFormat {
    /// Family name, for logs and `--help` output.
    pub name: String,
    /// Prefix-suffix-middle template with `{prefix}` and `{suffix}`, if the family has one.
    pub psm: Option<String>,
    /// Suffix-prefix-middle template, if the family has one.
    pub spm: Option<String>,
    /// The order used unless a request asks otherwise.
    pub default_order: FimOrder,
    /// How repository context is rendered.
    pub context: ContextStyle,
    /// Marker strings that end the middle when the model writes them as text.
    pub stop_markers: Vec<String>,
}

/// Everything that goes into one FIM prompt.
#[derive(Debug, Clone, Copy)]
pub struct FimInput<'a> {
    /// Workspace-relative path of the current file, when known.
    pub path: Option<&'a str>,
    /// Text before the cursor.
    pub prefix: &'a str,
    /// Text after the cursor.
    pub suffix: &'a str,
    /// Other files of the repository, dependencies first.
    pub context: &'a [ContextBlock],
    /// Name of the repository (the workspace folder's name).
    pub repo_name: Option<&'a str>,
}

/// Why a template from the configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Neither a known family name nor a template with both placeholders.
    #[error(
        "FIM template {0:?} is neither a known format ({known}) nor a template containing both {{prefix}} and {{suffix}}",
        known = PRESETS.join(", ")
    )]
    Invalid(String),
}

/// Names accepted as `fimTemplate` besides a literal template.
pub const PRESETS: &[&str] = &[
    "qwen",
    "codegemma",
    "starcoder",
    "starcoder2",
    "santacoder",
    "deepseek",
    "codestral",
    "codellama",
    "codellama-psm",
];

fn s(text: &str) -> String {
    text.to_owned()
}

impl FimFormat {
    /// Qwen2.5-Coder: `<|fim_prefix|>` … and the repository tokens `<|repo_name|>`, `<|file_sep|>`.
    /// PSM only: measured here, the 0.5B passes 8% of single-line tasks in SPM against 50% in PSM.
    pub fn qwen() -> Self {
        FimFormat {
            name: s("qwen2.5-coder"),
            psm: Some(s(
                "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
            )),
            spm: Some(s(
                "<|fim_suffix|>{suffix}<|fim_prefix|>{prefix}<|fim_middle|>",
            )),
            default_order: FimOrder::Psm,
            context: ContextStyle::FileSeparators {
                repo_header: Some(s("<|repo_name|>{repo}\n")),
                file_header: s("<|file_sep|>{path}\n"),
            },
            stop_markers: vec![
                s("<|endoftext|>"),
                s("<|file_sep|>"),
                s("<|repo_name|>"),
                s("<|fim_prefix|>"),
                s("<|fim_suffix|>"),
                s("<|fim_middle|>"),
                s("<|fim_pad|>"),
                s("<|im_end|>"),
            ],
        }
    }

    /// CodeGemma: the same markers as Qwen, files separated by `<|file_separator|>`.
    pub fn codegemma() -> Self {
        FimFormat {
            name: s("codegemma"),
            psm: Some(s(
                "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
            )),
            spm: Some(s(
                "<|fim_suffix|>{suffix}<|fim_prefix|>{prefix}<|fim_middle|>",
            )),
            default_order: FimOrder::Psm,
            context: ContextStyle::PathComments,
            stop_markers: vec![
                s("<|file_separator|>"),
                s("<|fim_prefix|>"),
                s("<|fim_suffix|>"),
                s("<|fim_middle|>"),
                s("<eos>"),
            ],
        }
    }

    /// StarCoder / StarCoderBase: `<fim_prefix>` … (StarCoder2 adds `<file_sep>`).
    pub fn starcoder(with_file_sep: bool) -> Self {
        FimFormat {
            name: s(if with_file_sep {
                "starcoder2"
            } else {
                "starcoder"
            }),
            psm: Some(s("<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>")),
            spm: Some(s("<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}")),
            default_order: FimOrder::Psm,
            context: if with_file_sep {
                ContextStyle::FileSeparators {
                    repo_header: Some(s("<repo_name>{repo}")),
                    file_header: s("<file_sep>{path}\n"),
                }
            } else {
                ContextStyle::PathComments
            },
            stop_markers: vec![
                s("<|endoftext|>"),
                s("<file_sep>"),
                s("<fim_prefix>"),
                s("<fim_suffix>"),
                s("<fim_middle>"),
            ],
        }
    }

    /// SantaCoder: hyphenated markers `<fim-prefix>` ….
    pub fn santacoder() -> Self {
        FimFormat {
            name: s("santacoder"),
            psm: Some(s("<fim-prefix>{prefix}<fim-suffix>{suffix}<fim-middle>")),
            spm: None,
            default_order: FimOrder::Psm,
            context: ContextStyle::PathComments,
            stop_markers: vec![
                s("<|endoftext|>"),
                s("<fim-prefix>"),
                s("<fim-suffix>"),
                s("<fim-middle>"),
            ],
        }
    }

    /// DeepSeek-Coder: `<｜fim▁begin｜>` prefix `<｜fim▁hole｜>` suffix `<｜fim▁end｜>`.
    pub fn deepseek() -> Self {
        FimFormat {
            name: s("deepseek-coder"),
            psm: Some(s(
                "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
            )),
            spm: None,
            default_order: FimOrder::Psm,
            context: ContextStyle::PathComments,
            stop_markers: vec![
                s("<｜end▁of▁sentence｜>"),
                s("<|EOT|>"),
                s("<｜fim▁begin｜>"),
                s("<｜fim▁hole｜>"),
                s("<｜fim▁end｜>"),
            ],
        }
    }

    /// Codestral: `[SUFFIX]` suffix `[PREFIX]` prefix — its native order is suffix first.
    pub fn codestral() -> Self {
        FimFormat {
            name: s("codestral"),
            psm: None,
            spm: Some(s("[SUFFIX]{suffix}[PREFIX]{prefix}")),
            default_order: FimOrder::Spm,
            context: ContextStyle::PathComments,
            stop_markers: vec![s("</s>"), s("[SUFFIX]"), s("[PREFIX]"), s("[MIDDLE]")],
        }
    }

    /// Code Llama: `<PRE> {prefix} <SUF>{suffix} <MID>` (PSM) and `<PRE> <SUF>{suffix} <MID> {prefix}`
    /// (SPM). SPM is the default: the Code Llama paper reports 83.3% against 74.1% (7B,
    /// single-line infilling).
    pub fn codellama(order: FimOrder) -> Self {
        FimFormat {
            name: s("codellama"),
            psm: Some(s("<PRE> {prefix} <SUF>{suffix} <MID>")),
            spm: Some(s("<PRE> <SUF>{suffix} <MID> {prefix}")),
            default_order: order,
            context: ContextStyle::PathComments,
            stop_markers: vec![s("<EOT>"), s("</s>"), s("<PRE>"), s("<SUF>"), s("<MID>")],
        }
    }

    /// A format built from the model's generic FIM token texts (llama.cpp's `fim_pre` …),
    /// for families this module does not know by name.
    pub fn generic(pre: &str, suf: &str, mid: &str) -> Self {
        FimFormat {
            name: format!("generic ({pre}{suf}{mid})"),
            psm: Some(format!("{pre}{{prefix}}{suf}{{suffix}}{mid}")),
            spm: None,
            default_order: FimOrder::Psm,
            context: ContextStyle::PathComments,
            stop_markers: vec![pre.to_owned(), suf.to_owned(), mid.to_owned()],
        }
    }

    /// A format from the configuration: a preset name (see [`PRESETS`]) or a literal template
    /// with `{prefix}` and `{suffix}` (whichever comes first sets the order).
    pub fn from_template(template: &str) -> Result<Self, TemplateError> {
        let preset = match template.trim().to_ascii_lowercase().as_str() {
            "qwen" | "qwen2.5-coder" => Some(Self::qwen()),
            "codegemma" => Some(Self::codegemma()),
            "starcoder" => Some(Self::starcoder(false)),
            "starcoder2" => Some(Self::starcoder(true)),
            "santacoder" => Some(Self::santacoder()),
            "deepseek" | "deepseek-coder" => Some(Self::deepseek()),
            "codestral" => Some(Self::codestral()),
            "codellama" | "codellama-spm" => Some(Self::codellama(FimOrder::Spm)),
            "codellama-psm" => Some(Self::codellama(FimOrder::Psm)),
            _ => None,
        };
        if let Some(format) = preset {
            return Ok(format);
        }
        let (Some(p), Some(q)) = (template.find("{prefix}"), template.find("{suffix}")) else {
            return Err(TemplateError::Invalid(template.to_owned()));
        };
        let order = if p < q { FimOrder::Psm } else { FimOrder::Spm };
        Ok(FimFormat {
            name: s("custom"),
            psm: (order == FimOrder::Psm).then(|| template.to_owned()),
            spm: (order == FimOrder::Spm).then(|| template.to_owned()),
            default_order: order,
            context: ContextStyle::PathComments,
            stop_markers: Vec::new(),
        })
    }

    /// Whether the format has a template for `order`.
    pub fn supports(&self, order: FimOrder) -> bool {
        match order {
            FimOrder::Psm => self.psm.is_some(),
            FimOrder::Spm => self.spm.is_some(),
        }
    }

    /// Renders the prompt in `order` (falling back to the format's own order when it has no
    /// template for the one asked for), as one string. For display and tests: the engine
    /// tokenizes [`segments`](Self::segments) instead, so that document text is never parsed
    /// for special tokens.
    pub fn render(&self, input: &FimInput<'_>, order: Option<FimOrder>) -> String {
        self.segments(input, order)
            .iter()
            .map(|s| s.as_str())
            .collect()
    }

    /// Renders the prompt as segments: the format's own text (markers, headers, template glue)
    /// and plain text (the document, paths, repository context, the repository name).
    /// Adjacent segments of one kind are merged.
    pub fn segments(&self, input: &FimInput<'_>, order: Option<FimOrder>) -> Vec<Segment> {
        let order = order
            .filter(|o| self.supports(*o))
            .unwrap_or(self.default_order);
        let template = match order {
            FimOrder::Psm => self.psm.as_deref().or(self.spm.as_deref()),
            FimOrder::Spm => self.spm.as_deref().or(self.psm.as_deref()),
        }
        .unwrap_or("{prefix}{suffix}");

        let mut out = Segments::default();
        let mut prefix = String::new();
        match &self.context {
            ContextStyle::FileSeparators {
                repo_header,
                file_header,
            } if !input.context.is_empty() => {
                if let (Some(header), Some(repo)) = (repo_header, input.repo_name) {
                    out.fill(header, &[("{repo}", repo)]);
                }
                for block in input.context {
                    out.fill(file_header, &[("{path}", &block.path)]);
                    out.text(&block.text);
                    if !block.text.is_empty() && !block.text.ends_with('\n') {
                        out.text("\n");
                    }
                }
                if let Some(path) = input.path {
                    out.fill(file_header, &[("{path}", path)]);
                }
            }
            ContextStyle::PathComments if !input.context.is_empty() => {
                for block in input.context {
                    prefix.push_str(&path_comment(&block.path));
                    push_with_newline(&mut prefix, &block.text);
                }
                if let Some(path) = input.path {
                    prefix.push_str(&path_comment(path));
                }
            }
            _ => {}
        }
        prefix.push_str(input.prefix);
        out.fill(
            template,
            &[("{prefix}", &prefix), ("{suffix}", input.suffix)],
        );
        out.0
    }
}

/// One piece of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// The format's own text: tokenized with special-token parsing, so markers become single
    /// special tokens.
    Format(String),
    /// Document or context text: tokenized as plain text, so a file containing
    /// `<|fim_middle|>` cannot change the prompt's structure.
    Text(String),
}

impl Segment {
    /// The segment's text.
    pub fn as_str(&self) -> &str {
        match self {
            Segment::Format(s) | Segment::Text(s) => s,
        }
    }
}

#[derive(Default)]
struct Segments(Vec<Segment>);

impl Segments {
    fn format(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Segment::Format(last)) => last.push_str(s),
            _ => self.0.push(Segment::Format(s.to_owned())),
        }
    }

    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Segment::Text(last)) => last.push_str(s),
            _ => self.0.push(Segment::Text(s.to_owned())),
        }
    }

    /// Appends `template` as format text, each placeholder replaced by its value as plain
    /// text, in one pass (code containing a placeholder's name is never substituted again).
    fn fill(&mut self, template: &str, values: &[(&str, &str)]) {
        let mut rest = template;
        'outer: while let Some(i) = rest.find('{') {
            self.format(&rest[..i]);
            let tail = &rest[i..];
            for (name, value) in values {
                if let Some(t) = tail.strip_prefix(name) {
                    self.text(value);
                    rest = t;
                    continue 'outer;
                }
            }
            self.format("{");
            rest = &tail[1..];
        }
        self.format(rest);
    }
}

fn push_with_newline(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        out.push('\n');
    }
}

/// `# path` / `// path` / `-- path` …, in the comment syntax of the path's language (the
/// markers are `ghostline-lang`'s).
pub fn path_comment(path: &str) -> String {
    let ghostline_lang::Comment { open, close } = ghostline_lang::path_comment(path);
    format!("{open} {path}{close}\n")
}

/// Picks the format from the model's special tokens. `has_token(text)` says whether `text` is a
/// single special token of the vocabulary; `generic` holds llama.cpp's own FIM token texts
/// (prefix, suffix, middle) when the GGUF declares them.
pub fn detect(
    has_token: &dyn Fn(&str) -> bool,
    generic: Option<(String, String, String)>,
) -> Option<FimFormat> {
    if has_token("<|fim_prefix|>") && has_token("<|fim_middle|>") {
        if has_token("<|file_sep|>") || has_token("<|repo_name|>") {
            return Some(FimFormat::qwen());
        }
        return Some(FimFormat::codegemma());
    }
    if has_token("<fim_prefix>") && has_token("<fim_middle>") {
        return Some(FimFormat::starcoder(has_token("<file_sep>")));
    }
    if has_token("<fim-prefix>") && has_token("<fim-middle>") {
        return Some(FimFormat::santacoder());
    }
    if has_token("<｜fim▁begin｜>") && has_token("<｜fim▁hole｜>") {
        return Some(FimFormat::deepseek());
    }
    if has_token("[SUFFIX]") && has_token("[PREFIX]") {
        return Some(FimFormat::codestral());
    }
    if has_token("<PRE>") && has_token("<SUF>") && has_token("<MID>") {
        return Some(FimFormat::codellama(FimOrder::Spm));
    }
    generic.map(|(p, s, m)| FimFormat::generic(&p, &s, &m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(context: &'a [ContextBlock]) -> FimInput<'a> {
        FimInput {
            path: Some("pkg/main.py"),
            prefix: "def f():\n    ",
            suffix: "\nprint(f())\n",
            context,
            repo_name: Some("demo"),
        }
    }

    fn blocks() -> Vec<ContextBlock> {
        vec![
            ContextBlock {
                path: "pkg/util.py".into(),
                text: "def helper():\n    return 1\n".into(),
            },
            ContextBlock {
                path: "pkg/b.py".into(),
                text: "X = 2".into(),
            },
        ]
    }

    /// Every family, both orders, with and without repository blocks: the exact prompt text.
    #[test]
    fn exact_prompts_for_every_format() {
        let ctx = blocks();
        let formats = [
            FimFormat::qwen(),
            FimFormat::codegemma(),
            FimFormat::starcoder(false),
            FimFormat::starcoder(true),
            FimFormat::santacoder(),
            FimFormat::deepseek(),
            FimFormat::codestral(),
            FimFormat::codellama(FimOrder::Spm),
        ];
        let mut out = String::new();
        for f in &formats {
            for order in [FimOrder::Psm, FimOrder::Spm] {
                for with_ctx in [false, true] {
                    let c: &[ContextBlock] = if with_ctx { &ctx } else { &[] };
                    let rendered = f.render(&input(c), Some(order));
                    out.push_str(&format!(
                        "== {} {} ctx={} (supports {}: {})\n{}\n",
                        f.name,
                        order,
                        with_ctx,
                        order,
                        f.supports(order),
                        rendered
                    ));
                }
            }
        }
        expect_test::expect_file!["../tests/fim_prompts.txt"].assert_eq(&out);
    }

    #[test]
    fn qwen_repo_context_is_native() {
        let ctx = blocks();
        let p = FimFormat::qwen().render(&input(&ctx), None);
        assert_eq!(
            p,
            "<|repo_name|>demo\n<|file_sep|>pkg/util.py\ndef helper():\n    return 1\n\
             <|file_sep|>pkg/b.py\nX = 2\n<|file_sep|>pkg/main.py\n\
             <|fim_prefix|>def f():\n    <|fim_suffix|>\nprint(f())\n<|fim_middle|>"
        );
    }

    #[test]
    fn plain_qwen_psm_has_no_headers() {
        let p = FimFormat::qwen().render(&input(&[]), None);
        assert_eq!(
            p,
            "<|fim_prefix|>def f():\n    <|fim_suffix|>\nprint(f())\n<|fim_middle|>"
        );
    }

    #[test]
    fn placeholders_inside_code_are_not_substituted_twice() {
        let i = FimInput {
            path: None,
            prefix: "x = '{suffix}'",
            suffix: "y = '{prefix}'",
            context: &[],
            repo_name: None,
        };
        let p = FimFormat::qwen().render(&i, None);
        assert_eq!(
            p,
            "<|fim_prefix|>x = '{suffix}'<|fim_suffix|>y = '{prefix}'<|fim_middle|>"
        );
    }

    #[test]
    fn templates_from_configuration() {
        let f = FimFormat::from_template("<s>{suffix}<x>{prefix}<y>").unwrap();
        assert_eq!(f.default_order, FimOrder::Spm);
        assert_eq!(
            f.render(&input(&[]), None),
            "<s>\nprint(f())\n<x>def f():\n    <y>"
        );
        assert_eq!(
            FimFormat::from_template("deepseek").unwrap(),
            FimFormat::deepseek()
        );
        let err = FimFormat::from_template("{prefix} only").unwrap_err();
        assert!(err.to_string().contains("{suffix}"), "{err}");
    }

    #[test]
    fn detection_from_special_tokens() {
        let vocab = |tokens: &'static [&'static str]| move |t: &str| tokens.contains(&t);
        let qwen = vocab(&["<|fim_prefix|>", "<|fim_middle|>", "<|file_sep|>"]);
        assert_eq!(detect(&qwen, None).unwrap().name, "qwen2.5-coder");
        let gemma = vocab(&["<|fim_prefix|>", "<|fim_middle|>", "<|file_separator|>"]);
        assert_eq!(detect(&gemma, None).unwrap().name, "codegemma");
        let sc2 = vocab(&["<fim_prefix>", "<fim_middle>", "<file_sep>"]);
        assert_eq!(detect(&sc2, None).unwrap().name, "starcoder2");
        let sc = vocab(&["<fim_prefix>", "<fim_middle>"]);
        assert_eq!(detect(&sc, None).unwrap().name, "starcoder");
        let santa = vocab(&["<fim-prefix>", "<fim-middle>"]);
        assert_eq!(detect(&santa, None).unwrap().name, "santacoder");
        let ds = vocab(&["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]);
        assert_eq!(detect(&ds, None).unwrap().name, "deepseek-coder");
        let cs = vocab(&["[SUFFIX]", "[PREFIX]"]);
        assert_eq!(detect(&cs, None).unwrap().name, "codestral");
        let cl = vocab(&["<PRE>", "<SUF>", "<MID>"]);
        let f = detect(&cl, None).unwrap();
        assert_eq!(
            (f.name.as_str(), f.default_order),
            ("codellama", FimOrder::Spm)
        );
        let none = vocab(&["<s>"]);
        assert!(detect(&none, None).is_none());
        let g = detect(&none, Some(("<a>".into(), "<b>".into(), "<c>".into()))).unwrap();
        assert_eq!(g.psm.as_deref(), Some("<a>{prefix}<b>{suffix}<c>"));
    }

    #[test]
    fn path_comments_follow_the_language() {
        assert_eq!(path_comment("a/b.py"), "# a/b.py\n");
        assert_eq!(path_comment("src/lib.rs"), "// src/lib.rs\n");
        assert_eq!(path_comment("x.lua"), "-- x.lua\n");
        assert_eq!(path_comment("Makefile"), "// Makefile\n");
    }
}
