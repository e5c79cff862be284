; Rust outline for ghostline-context (crate `context/src/outline.rs` walks the tree with these roles).
; An outline keeps what a caller needs to use a module: type definitions, signatures, constants,
; doc comments and attributes; function bodies become `{ ... }`.
;
; @item            kept whole
; @function        kept up to its body; @function.body is replaced by `{ ... }`
; @container       header kept, then its @container.body is outlined child by child
; @leading         kept only when it directly precedes a kept item (doc comments, attributes)
; @exclude         drops the item it precedes (test-only code)
; @name            the name a definition introduces (for `impl`, the implementing type)

; Data types, aliases, constants, declarations without bodies: kept whole.
(struct_item name: (_) @name) @item
(enum_item name: (_) @name) @item
(union_item name: (_) @name) @item
(type_item name: (_) @name) @item
(const_item name: (_) @name) @item
(static_item name: (_) @name) @item
(function_signature_item name: (_) @name) @item
(associated_type name: (_) @name) @item
(macro_definition name: (_) @name) @item
(mod_item name: (_) @name !body) @item

; Re-exports are part of a module's interface.
(use_declaration (visibility_modifier)) @item

; Module documentation (`//!`).
(line_comment inner: (_)) @item
(block_comment inner: (_)) @item

; Functions and methods: signature kept, body dropped.
(function_item
  name: (_) @name
  body: (block) @function.body) @function

; Blocks whose members are outlined one by one.
(impl_item
  type: (_) @name
  body: (declaration_list) @container.body) @container
(trait_item
  name: (_) @name
  body: (declaration_list) @container.body) @container
(mod_item
  name: (_) @name
  body: (declaration_list) @container.body) @container

; Doc comments (`///`) and attributes stay with the item they precede.
(line_comment outer: (_)) @leading
(block_comment outer: (_)) @leading
(attribute_item) @leading

; Test-only code is left out: `#[cfg(test)] mod tests { .. }` and the like.
((attribute_item) @exclude
  (#eq? @exclude "#[cfg(test)]"))
