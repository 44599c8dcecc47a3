// backends/chat/jinja/jinja_render.hpp — walking a compiled template to produce text.
//
// Owns: one render's state: the scopes (the template's top level, one per for loop and macro call; a
// macro sees its arguments and the top level, not its caller's locals), the request's variables underneath
// them, the loop objects, break/continue, macro calls, and where a runtime failure happened (the innermost
// node that failed names its line).
// Must not touch: the tree (shared by concurrent renders, read only) and anything global.
// Thread-safety: each render_ast call has its own state; concurrent calls on one tree are safe.
#pragma once

#include <string>

#include "backends/chat/jinja/jinja_ast.hpp"

namespace yard::backends::chat::jinja {

// `context` is a dict (the request's variables). Throws template_error on runtime failures.
std::string render_ast(const template_ast& ast, const value& context);

}  // namespace yard::backends::chat::jinja
