; Rust imports for ghostline-context (crate `context/src/imports.rs` reads the captures).
;
; @mod       a `mod foo;` declaration (no body: the module lives in another file);
;            the code reads a preceding `#[path = "..."]` attribute and enclosing inline modules
; @mod.name  its name
; @use       the argument of a `use` declaration: a path, a group `{..}`, `a as b` or a glob,
;            flattened by the code into one path per imported name

; mod foo;
(mod_item
  name: (identifier) @mod.name
  !body) @mod

; use crate::a::{b, c::D as E, f::*};
(use_declaration
  argument: (_) @use)
