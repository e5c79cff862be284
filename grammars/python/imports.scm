; Python imports for ghostline-context (crate `context/src/imports.rs` reads the captures).
; Matches anywhere in the tree: imports inside functions, `if TYPE_CHECKING:` and `try:` count.
;
; @module  dotted module name of `import a.b`
; @alias   local name of `import a.b as c`
; @from    module part of `from X import ...` (a dotted_name or a relative_import such as `..pkg`);
;          the code reads the imported names from the statement's `name` fields

; import a.b
(import_statement
  name: (dotted_name) @module)

; import a.b as c
(import_statement
  name: (aliased_import
    name: (dotted_name) @module
    alias: (identifier) @alias))

; from a.b import c, d as e  /  from . import x  /  from ..pkg.mod import *
(import_from_statement
  module_name: (_) @from)
