// backends/chat/jinja/jinja_parser.hpp — tokens to the statement tree of a template.
//
// Owns: the tags: if/elif/else, for (with `if` filter and `else`), set (plain, namespace attribute, tuple
// unpacking, block form with optional filters), macro, filter blocks, break/continue (inside loops only),
// do, generation (Hugging Face's marker, rendered as its body), and the compile-time checks that are not
// about one expression: every block is closed (an unclosed one names the line it opened on), every tag is
// known (include, import, extends, block, call, with, ... are unsupported), and every bare function called is a
// global (raise_exception, namespace, range, dict, strftime_now) or a macro of this template.
// Must not touch: rendering.
// Thread-safety: one call per compile; the result is immutable.
#pragma once

#include <memory>
#include <vector>

#include "backends/chat/jinja/jinja_ast.hpp"
#include "backends/chat/jinja/jinja_lexer.hpp"

namespace yard::backends::chat::jinja {

// Throws template_error: bad_request for syntax errors, unsupported for constructs this engine lacks.
std::unique_ptr<template_ast> parse(std::vector<token> tokens);

}  // namespace yard::backends::chat::jinja
