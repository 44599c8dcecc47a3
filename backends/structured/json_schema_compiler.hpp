// backends/structured/json_schema_compiler.hpp — JSON Schema to json_grammar.
//
// Owns: which JSON Schema keywords constrained decoding enforces, and the
// translation of a schema (response_format json_schema, a tool's parameters)
// into a finalized json_grammar.
// Must not touch: matching, tokens, request parsing (actors/ decides what a
// 400 says; the messages here name the keyword and where it sits).
// Thread-safety: pure functions.
//
// Supported: type (object, array, string, number, integer, boolean, null, or
// a list of them), properties, required, additionalProperties (false, true or
// a schema), enum, const, items (one schema), minItems/maxItems,
// minLength/maxLength, anyOf and oneOf (both as alternation: a value matching
// several oneOf branches is not excluded), $ref to "#/..." pointers such as
// #/$defs/x and #/definitions/x (recursion allowed), the boolean schemas true
// and {} (any value). Ignored annotations: description, title, default,
// examples, $schema, $id, $comment, deprecated, readOnly, writeOnly, and
// $defs/definitions themselves. Anything else (pattern, format, minimum,
// maximum, allOf, not, patternProperties, prefixItems, uniqueItems, ...)
// is errc::unsupported with the keyword named, so a request never gets output
// its schema rejects.
//
// Choices: properties are produced in declaration order (use
// nlohmann::ordered_json to keep the request's order; nlohmann::json sorts
// keys), optional ones may be skipped. additionalProperties absent means
// false when `properties` is given (OpenAI strict mode) and any value when it
// is not; an extra key is never a declared name. enum/const values are
// produced in their compact canonical text and must fit `type` if given;
// other constraints next to enum/const, and keywords next to anyOf/oneOf or
// $ref, are unsupported. `required` names that are not declared become
// properties of the additionalProperties schema (or a bad_request when extra
// keys are not allowed). `integer` means no fraction and no exponent.
#pragma once

#include <nlohmann/json.hpp>

#include "backends/structured/json_grammar.hpp"
#include "common/status.hpp"

namespace yard::backends::structured {

// Errors: unsupported (a keyword or form not enforced, named with its JSON
// pointer), bad_request (a malformed schema: wrong value types, min > max,
// an unresolvable $ref, nothing satisfies it).
result<json_grammar> compile_json_schema(const nlohmann::ordered_json& schema);
result<json_grammar> compile_json_schema(const nlohmann::json& schema);

}  // namespace yard::backends::structured
