; Python outline for ghostline-context (crate `context/src/outline.rs` walks the tree with these roles).
; An outline keeps what a caller needs to use a module: signatures, classes, docstrings and
; module/class-level assignments; function bodies become `...`.
;
; @item            kept whole
; @function        kept up to its body; @function.body is replaced by `...`
; @doc             kept inside a dropped function body (its docstring)
; @container       header kept, then its @container.body is outlined child by child
; @decorated       decorators kept, then the decorated definition is outlined
; @name            the name a definition introduces

; Module docstring.
(module . (expression_statement (string)) @item)

; Module-level assignments: constants, type aliases, `__all__`.
(module (expression_statement (assignment)) @item)
(module (type_alias_statement) @item)

; Class docstrings and class-level assignments (fields, constants).
(class_definition
  body: (block . (expression_statement (string)) @item))
(class_definition
  body: (block (expression_statement (assignment)) @item))

; Functions and methods: signature kept, body dropped, docstring kept.
(function_definition
  name: (identifier) @name
  body: (block) @function.body) @function
(function_definition
  body: (block . (expression_statement (string)) @doc))

; Classes: header kept, members outlined.
(class_definition
  name: (identifier) @name
  body: (block) @container.body) @container

; Decorators stay with what they decorate.
(decorated_definition) @decorated
